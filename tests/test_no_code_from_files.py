"""No code from files, anywhere: a run directory, a checkpoint or a data file someone hands you is
read as data. The source is scanned for the calls that could run code from a file, and each loader
is given a crafted file whose payload would create a marker file if it ran."""

from __future__ import annotations

import ast
import hashlib
import json
import pickle
import warnings
from pathlib import Path

import pytest
import torch

SOURCE = Path(__file__).resolve().parent.parent / "src" / "rnnkit"


class Payload:
    """Unpickling this calls open(marker, "w"): the marker exists if the loader ran code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


# -- the source --------------------------------------------------------------------------------------------
def calls_that_run_code(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = ast.unparse(func)
        keywords = {k.arg: k.value for k in node.keywords}
        if isinstance(func, ast.Name) and func.id in ("eval", "exec", "compile", "__import__"):
            found.append(f"{name}(...) at line {node.lineno}")
        elif name in ("pickle.load", "pickle.loads", "marshal.load", "marshal.loads", "shelve.open", "dill.load", "dill.loads"):
            found.append(f"{name}(...) at line {node.lineno}")
        elif name == "torch.load":
            weights_only = keywords.get("weights_only")
            if not (isinstance(weights_only, ast.Constant) and weights_only.value is True):
                found.append(f"torch.load without weights_only=True at line {node.lineno}")
        elif name.endswith("numpy.load") or name == "np.load":
            allow = keywords.get("allow_pickle")
            if allow is not None and not (isinstance(allow, ast.Constant) and allow.value is False):
                found.append(f"{name} with allow_pickle at line {node.lineno}")
        elif name in ("yaml.load", "yaml.unsafe_load"):
            found.append(f"{name}(...) at line {node.lineno}")
    return found


def test_the_source_never_runs_code_from_a_file():
    problems = []
    for path in sorted(SOURCE.rglob("*.py")):
        for found in calls_that_run_code(ast.parse(path.read_text(encoding="utf-8"))):
            problems.append(f"{path.relative_to(SOURCE)}: {found}")
    unpicklers = [p.name for p in SOURCE.rglob("*.py") if "pickle.Unpickler" in p.read_text(encoding="utf-8")]
    assert not problems, problems
    assert unpicklers == ["safe_pickle.py"]  # the one restricted unpickler


def test_the_scan_finds_what_it_looks_for():
    bad = "import pickle, torch\npickle.loads(b'')\ntorch.load('x')\ntorch.load('x', weights_only=False)\neval('1')\nexec('x=1')\n"
    assert len(calls_that_run_code(ast.parse(bad))) == 5
    good = "torch.load('x', weights_only=True)\nmodel.eval()\n"
    assert calls_that_run_code(ast.parse(good)) == []


# -- the loaders ------------------------------------------------------------------------------------------------
def test_a_crafted_music_pickle_is_refused_without_running_it(tmp_path):
    from rnnkit.data.music import read_chorales
    from rnnkit.errors import DataError

    marker = tmp_path / "MARKER"
    path = tmp_path / "chorales.pkl"
    path.write_bytes(pickle.dumps({"train": [[[60, 64]]], "x": Payload(marker)}))
    with pytest.raises(DataError, match=r"chorales\.pkl: refused"):
        read_chorales(path)
    assert not marker.exists()
    for protocol in (0, 2, 5):  # containers and numbers read as usual
        path.write_bytes(pickle.dumps({"train": [[[60, 64], [62]]], "valid": [[[60]]]}, protocol=protocol))
        assert read_chorales(path)["train"] == [[[60, 64], [62]]]


def test_the_standard_jsb_pickle_reads_as_its_json():
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "jsb_chorales"
    if not (data / "jsb-chorales-quarter.pkl").exists():
        pytest.skip("../shared/data/jsb_chorales is not here")
    pytest.importorskip("numpy")
    from rnnkit.data.music import read_chorales

    assert read_chorales(data / "jsb-chorales-quarter.pkl") == read_chorales(data / "jsb-chorales-quarter.json")


def test_numpy_scalars_of_numbers_only(tmp_path):
    numpy = pytest.importorskip("numpy")
    from rnnkit.safe_pickle import load_data

    path = tmp_path / "n.pkl"
    path.write_bytes(pickle.dumps([numpy.int64(60), numpy.float32(0.5)], protocol=2))
    assert load_data(path) == [60, 0.5]
    path.write_bytes(pickle.dumps([numpy.array([1, 2])], protocol=2))  # arrays name other callables: refused
    from rnnkit.errors import DataError

    with pytest.raises(DataError, match="refused"):
        load_data(path)


def crafted_checkpoint(run: Path, marker: Path) -> Path:
    """The run's newest checkpoint with a payload in its training state, and a manifest rewritten to
    match (as someone handing over a run directory could), so that only the loader stands between."""
    newest = max((run / "checkpoints").iterdir())
    state_path = newest / "training_state.pt"
    state = torch.load(state_path, weights_only=True)
    state["x"] = Payload(marker)
    state_path.unlink()  # the published file is a hard link to it: a new file, not written through
    torch.save(state, state_path)
    manifest = json.loads((newest / "manifest.json").read_text())
    data = state_path.read_bytes()
    manifest["files"]["training_state.pt"] = {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (newest / "manifest.json").write_text(json.dumps(manifest))
    (run / "training_state.pt").unlink()
    (run / "training_state.pt").write_bytes(data)
    return newest


def tiny_run(tmp_path: Path) -> Path:
    from rnnkit.runs import start

    text = tmp_path / "names.txt"
    text.write_text("\n".join(["anna", "bob", "carla", "dora", "emil", "fritz", "gina", "hugo"] * 4) + "\n")
    run = tmp_path / "run"
    start("lm", {"train": [str(text)], "hidden_size": 8, "embedding_size": 4, "epochs": 1, "batch_size": 8, "progress": False}, run)
    return run


def test_a_crafted_training_state_cannot_run_code_on_resume(tmp_path, monkeypatch):
    from rnnkit.runs import open_run, resume
    from rnnkit.training.checkpoint import CheckpointError, load_state

    monkeypatch.setenv("RNNKIT_TEST_NO_FSYNC", "1")
    run = tiny_run(tmp_path)
    marker = tmp_path / "MARKER"
    crafted_checkpoint(run, marker)
    open_run(run)  # sampling, scoring, evaluation read safetensors and JSON only
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match=r"training_state\.pt: holds Python objects besides tensors") as refused:
            resume(run, {"epochs": 2, "progress": False})
    assert not marker.exists()
    assert "weights_only" not in str(refused.value) and not [w for w in caught if "pickle" in str(w.message)]  # one line, no advice to unsafe loading
    (run / "training_state.pt").write_bytes(b"garbage")  # a damaged file is no crafted one
    with pytest.raises(CheckpointError, match=r"not a training state rnnkit can load safely \(damaged"):
        load_state(run / "training_state.pt")
