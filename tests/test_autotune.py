"""``engine="auto"`` measures once per shape class and machine, remembers, and never crashes on its
cache file; a forced engine and the fixed-order settings never time anything.

Most tests replace the timing (``autotune.measure``) by given figures, so nothing depends on this
machine's speed; one times the real engines at a small shape.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch

from rnnkit import Recurrent
from rnnkit.engines import autotune

SHAPE = (32, 16, 24)  # (T, B, n_x): T·B·n_a·(n_a + n_x) = 32·16·96·120, over autotune.TINY_WORK
HIDDEN = 96


@pytest.fixture(autouse=True)
def tuning(monkeypatch, tmp_path):
    """Autotuning on (the suite's conftest turns it off), a private cache, a fresh process memory."""
    monkeypatch.setenv("RNNKIT_AUTOTUNE", "1")
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    autotune.forget()
    yield
    autotune.forget()


def timings(figures: dict[str, float] | None, calls: list):
    """A stand-in for autotune.measure: records its calls, returns ``figures`` (None: must not run)."""

    def measure(cell, x, training, candidates, rounds=autotune.ROUNDS):
        calls.append((cell.kind, training, sorted(e.name for e in candidates)))
        assert figures is not None, "timed although the choice was known"
        return {e.name: figures[e.name] for e in candidates}

    return measure


def lstm_call(layer: Recurrent, grad: bool = True):
    x = torch.randn(*SHAPE, requires_grad=grad)
    return layer.engine_for(x.device, x).name, x


def test_auto_takes_the_engine_measured_fastest_and_keeps_it(monkeypatch, caplog):
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, calls))
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    with caplog.at_level(logging.DEBUG, logger="rnnkit.engines"):
        assert lstm_call(layer)[0] == "native"
    assert calls == [("lstm", True, ["fused", "native"])]
    assert any("auto: native for lstm" in r.message and "measured" in r.message for r in caplog.records)
    # the same shape class again, in this process: remembered, even if the machine got faster at fused
    monkeypatch.setattr(autotune, "measure", timings({"fused": 1.0, "native": 4.0}, calls))
    assert lstm_call(layer)[0] == "native" and len(calls) == 1
    # a training call runs on it: the same shape class, not timed again
    out, _ = layer(torch.randn(*SHAPE))
    assert out.shape == (SHAPE[0], SHAPE[1], HIDDEN) and len(calls) == 1
    # a new process: read from the file, not timed
    autotune.forget()
    monkeypatch.setattr(autotune, "measure", timings(None, calls))
    assert lstm_call(layer)[0] == "native"
    stored = json.loads(autotune.cache_file().read_text())["machines"][autotune.machine_signature()]
    assert {entry["engine"] for entry in stored.values()} == {"native"}


def test_training_and_inference_are_measured_apart(monkeypatch):
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 2.0, "native": 3.0}, calls))
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    assert lstm_call(layer)[0] == "fused"
    with torch.no_grad():
        assert lstm_call(layer, grad=False)[0] == "fused"
    assert [training for _, training, _ in calls] == [True, False]


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"format": 1, "machines": []}', '{"format": 0}', "", "[" * 100000 + "]" * 100000])
def test_a_corrupt_or_foreign_cache_file_is_rebuilt(monkeypatch, content):
    path = autotune.cache_file()
    path.parent.mkdir(parents=True)
    path.write_text(content)
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, calls))
    assert lstm_call(Recurrent("lstm", SHAPE[2], HIDDEN))[0] == "native"
    data = json.loads(path.read_text())
    assert data["format"] == autotune.FORMAT and data["machines"][autotune.machine_signature()]
    assert [p.name for p in path.parent.iterdir()] == ["autotune.json"]  # no temporary file left


def test_another_machines_choices_are_neither_used_nor_lost(monkeypatch):
    path = autotune.cache_file()
    path.parent.mkdir(parents=True)
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    x = torch.randn(*SHAPE, requires_grad=True)
    key = autotune.key_for(layer.cells["l0"], x, True)
    other = {"other CPU | torch 0 | rnnkit 0": {key: {"engine": "fused"}}}
    path.write_text(json.dumps({"format": autotune.FORMAT, "machines": other}))
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, calls))
    assert layer.engine_for(x.device, x).name == "native" and len(calls) == 1
    machines = json.loads(path.read_text())["machines"]
    assert machines["other CPU | torch 0 | rnnkit 0"] == other["other CPU | torch 0 | rnnkit 0"]


@pytest.mark.parametrize("entry", [{"engine": "warp-drive"}, "native", {"engine": ["native"]}, None, 3, {"ms": {}}])
def test_a_stored_entry_that_names_no_engine_that_runs_is_measured_again_and_rewritten(monkeypatch, entry):
    """An unknown engine, or an entry of another type (a hand edit, another version's format), was a
    traceback in every later ``engine="auto"`` call, ``rnnkit train`` included, and never repaired."""
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    x = torch.randn(*SHAPE, requires_grad=True)
    key = autotune.key_for(layer.cells["l0"], x, True)
    autotune.cache_file().parent.mkdir(parents=True)
    autotune.cache_file().write_text(json.dumps({"format": autotune.FORMAT, "machines": {autotune.machine_signature(): {key: entry}}}))
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, calls))
    assert layer.engine_for(x.device, x).name == "native" and len(calls) == 1
    stored = json.loads(autotune.cache_file().read_text())["machines"][autotune.machine_signature()][key]
    assert stored["engine"] == "native"


def test_the_switch_and_the_cache_directory_read_as_users_write_them(monkeypatch, tmp_path):
    for off in ("0", "false", "OFF", " no "):
        monkeypatch.setenv("RNNKIT_AUTOTUNE", off)
        assert not autotune.enabled(), off
    monkeypatch.setenv("RNNKIT_AUTOTUNE", "1")
    assert autotune.enabled()
    monkeypatch.delenv("RNNKIT_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")  # the XDG specification: ignored
    assert autotune.cache_file() == tmp_path / ".cache" / "rnnkit" / "autotune.json"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert autotune.cache_file() == tmp_path / "xdg" / "rnnkit" / "autotune.json"


def test_a_failed_write_of_the_cache_leaves_no_temporary_file(monkeypatch):
    """The cache's path taken by a folder: the rename fails, and no temporary may pile up beside it."""
    autotune.cache_file().mkdir(parents=True)
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, []))
    assert lstm_call(Recurrent("lstm", SHAPE[2], HIDDEN))[0] == "native"
    assert [p.name for p in autotune.cache_file().parent.iterdir()] == ["autotune.json"]


def test_forced_engines_fixed_order_and_tiny_shapes_never_time(monkeypatch):
    calls = []
    monkeypatch.setattr(autotune, "measure", timings(None, calls))
    forced = Recurrent("lstm", SHAPE[2], HIDDEN, engine="fused")
    assert lstm_call(forced)[0] == "fused"
    forced(torch.randn(*SHAPE, requires_grad=True))[0].sum().backward()
    tiny = Recurrent("lstm", 3, 8)
    x = torch.randn(5, 2, 3)
    assert tiny.engine_for(x.device, x).name == "fused"
    tiny(x)
    only_fused = Recurrent("gru", SHAPE[2], HIDDEN)  # the fused engine is the only fast path of the course gru
    assert lstm_call(only_fused)[0] == "fused"
    monkeypatch.setenv("RNNKIT_AUTOTUNE", "0")
    assert lstm_call(Recurrent("lstm", SHAPE[2], HIDDEN))[0] == "fused"  # the fixed order
    assert calls == [] and not autotune.cache_file().exists()


def test_an_unwritable_cache_keeps_the_choice_for_the_process(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("RNNKIT_CACHE", str(blocker / "cache"))
    calls = []
    monkeypatch.setattr(autotune, "measure", timings({"fused": 9.0, "native": 4.0}, calls))
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    assert lstm_call(layer)[0] == "native" and lstm_call(layer)[0] == "native" and len(calls) == 1


def test_real_timing_picks_an_engine_that_runs_and_stores_both_figures():
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    x = torch.randn(*SHAPE, requires_grad=True)
    before = [p.detach().clone() for p in layer.parameters()]
    name = layer.engine_for(x.device, x).name
    assert name in ("fused", "native")
    assert all(p.grad is None for p in layer.parameters()) and x.grad is None  # timing leaves no gradients
    assert all(torch.equal(p, q) for p, q in zip(before, layer.parameters()))
    entry = next(iter(json.loads(autotune.cache_file().read_text())["machines"][autotune.machine_signature()].values()))
    assert entry["engine"] == name and set(entry["ms"]) == {"fused", "native"} and min(entry["ms"], key=entry["ms"].get) == name


class _Clock:
    """A stand-in for the time module: each engine's run advances it by that engine's next figure."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        return self.now


@pytest.mark.parametrize(
    "ms, rounds_run",
    [
        ({"fused": [10.0] * 9, "native": [20.0] * 9}, 3),  # a clear winner: the 3 rounds decide
        ({"fused": [10.0] * 9, "native": [10.2] * 9}, 9),  # a tie: every round the cap allows
        ({"fused": [10.0, 10.0, 10.0, 10.0, 9.0, 8.0], "native": [13.0, 10.3, 10.3, 10.3, 11.0, 7.0]}, 4),  # parted by one more
    ],
)
def test_engines_within_a_few_percent_are_timed_over_more_rounds(monkeypatch, ms, rounds_run):
    """At the FMA limit two engines tie, and three rounds' noise would store the slower one for good."""
    clock = _Clock()
    ran = {name: 0 for name in ms}

    def step(engine, cell, x, training):
        def run():
            figures = ms[engine.name]
            clock.now += figures[min(ran[engine.name], len(figures) - 1)] / 1e3
            ran[engine.name] += 1

        return run

    monkeypatch.setattr(autotune, "_step", step)
    monkeypatch.setattr(autotune, "time", clock)
    engines = [type("E", (), {"name": name})() for name in ms]
    best = autotune.measure(None, None, True, engines)
    assert all(n == 1 + rounds_run for n in ran.values())  # one warm-up run each, then the rounds
    assert best == {name: pytest.approx(min(f[1 : 1 + rounds_run])) for name, f in ms.items()}


def test_an_engine_failing_in_the_timing_means_the_fixed_order_once(monkeypatch):
    calls = []

    def failing(cell, x, training, candidates, rounds=autotune.ROUNDS):
        calls.append(1)
        raise RuntimeError("out of memory at this shape")

    monkeypatch.setattr(autotune, "measure", failing)
    layer = Recurrent("lstm", SHAPE[2], HIDDEN)
    assert lstm_call(layer)[0] == "fused" and lstm_call(layer)[0] == "fused" and calls == [1]


def test_choices_stored_for_other_fused_loops_are_not_reused(monkeypatch):
    """The fused engine's loops are part of the signature: after their source (or flags) changed,
    or with the torch-op loops instead, the engines are timed again (a choice made for the old
    loops would keep a slower engine)."""
    from rnnkit.engines import compiled

    monkeypatch.setenv("RNNKIT_COMPILED_LOOPS", "1")
    before = autotune.machine_signature()
    monkeypatch.setattr(compiled, "extension_name", lambda: "rnnkit_fused_loops_changed")
    assert autotune.machine_signature() != before
    monkeypatch.setenv("RNNKIT_COMPILED_LOOPS", "0")
    assert autotune.machine_signature() not in (before, "rnnkit_fused_loops_changed") and "torch-op loops" in autotune.machine_signature()


def test_choices_stored_for_other_kernels_or_another_cpu_generation_are_not_reused(monkeypatch):
    """What makes an engine faster or slower is in the signature: the instruction set torch's
    kernels run (ATEN_CPU_CAPABILITY=avx2 on an AVX-512 CPU) and MKL's and oneDNN's (their own
    variables), the compiled loops' product routine (RNNKIT_PRODUCT), and the CPU's family and model where its name alone says only "AMD EPYC"."""
    monkeypatch.setenv("RNNKIT_COMPILED_LOOPS", "1")
    monkeypatch.setenv("RNNKIT_PRODUCT", "aten")
    for variable in autotune.BLAS_ISA_LIMITS:  # as on a machine run without them
        monkeypatch.delenv(variable, raising=False)
    before = autotune.machine_signature()
    monkeypatch.setenv("RNNKIT_PRODUCT", "mkl-packed")
    assert autotune.machine_signature() != before
    monkeypatch.setenv("RNNKIT_PRODUCT", "aten")
    monkeypatch.setenv("RNNKIT_PRODUCT", "onednn")
    assert autotune.machine_signature() != before
    monkeypatch.setenv("RNNKIT_PRODUCT", "aten")
    for variable in autotune.BLAS_ISA_LIMITS:  # MKL's and oneDNN's kernels capped at AVX2
        monkeypatch.setenv(variable, "AVX2")
        assert autotune.machine_signature() != before
        monkeypatch.delenv(variable)
    assert autotune.machine_signature() == before
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "ISA-NOT-THIS-ONE")
    assert "ISA-NOT-THIS-ONE" in autotune.machine_signature()

    def cpuinfo(fields):
        return lambda field: fields.get(field, "")

    zen3 = {"model name": "AMD EPYC", "cpu family": "25", "model": "1"}
    zen4 = {"model name": "AMD EPYC", "cpu family": "25", "model": "17"}
    monkeypatch.setattr(autotune, "cpu_info", cpuinfo(zen3))
    signature_zen3 = autotune.machine_signature()
    monkeypatch.setattr(autotune, "cpu_info", cpuinfo(zen4))
    assert autotune.machine_signature() != signature_zen3 and "family 25, model 17" in autotune.cpu_model()
    monkeypatch.setattr(autotune, "cpu_info", cpuinfo({"model name": "Apple M2"}))  # no family line: the name alone
    assert autotune.cpu_model() == "Apple M2"


def test_cpu_info_reads_whole_keys(monkeypatch, tmp_path):
    """"model" is its own key of /proc/cpuinfo, not the start of "model name"."""
    text = "vendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel name\t: AMD EPYC\nmodel\t\t: 17\n"  # "model name" first
    real = autotune.Path
    monkeypatch.setattr(autotune, "Path", lambda p: tmp_path / "cpuinfo" if p == "/proc/cpuinfo" else real(p))
    (tmp_path / "cpuinfo").write_text(text)
    assert (autotune.cpu_info("model"), autotune.cpu_info("model name"), autotune.cpu_info("cpu family")) == ("17", "AMD EPYC", "25")
