"""Data-parallel training (torch.distributed, gloo on the CPU): two processes sharing each global
batch end with the same weights as one process training on the same global batches."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from equality import assert_equal_up_to_rounding

NAMES = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon", "kara", "leo"] * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, values: dict, run_dir: str, task: str = "lm", call: str = "start", cwd: str | None = None) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    if cwd:
        os.chdir(cwd)
    from rnnkit import runs

    try:
        if call == "start":
            runs.start(task, values, run_dir)
        else:  # resume: values are its overrides
            runs.resume(run_dir, values)
    finally:
        dist.destroy_process_group()


# The equality tests train with SGD and momentum, whose step is linear in the gradient, so that the
# two runs' weights differ by the rounding of their gradients (sums in another order). Adam's step
# g / (√v + ε) is not: a gradient near zero whose rounding differs moves its weight by up to lr in
# either run, and on an AMD EPYC Zen 5 the tagger below ended 157 ε apart in one weight under AdamW
# (1 ε under SGD), where an Intel Xeon's sums happened to agree.
LINEAR_STEP = {"optimizer": "sgd", "momentum": 0.9}


def spawn(*args) -> None:
    mp.spawn(_worker, args=(2, free_port(), *args), nprocs=2, join=True)


def assert_same_weights(one_run, two_run, reduction: int) -> None:
    one, two = load_file(one_run / "last.safetensors"), load_file(two_run / "last.safetensors")
    assert one.keys() == two.keys()
    for key in one:
        assert_equal_up_to_rounding(one[key], two[key], reduction=reduction)


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("batching", ["sentences", "stream"])
def test_two_processes_equal_one_on_the_same_global_batch(tmp_path, batching):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n")
    values = {
        "train": [str(data)], "level": "char", "batching": batching, "batch_size": 8, "cell": "gru",
        "embedding_size": 8, "hidden_size": 16, "dropout": 0.0, "max_steps": 6, "eval_every": 3, "lr": 0.01,
        "progress": False, "seed": 3, **LINEAR_STEP, **({"bptt": 6} if batching == "stream" else {}),  # the chunk length of a stream only
    }  # fmt: skip
    torch.set_num_threads(1)
    from rnnkit.runs import start

    start("lm", values, tmp_path / "single")
    spawn(values, str(tmp_path / "ddp"))
    assert_same_weights(tmp_path / "single", tmp_path / "ddp", reduction=8 * 6)  # float32 sums over a global batch of 8 × 6 tokens
    assert (tmp_path / "ddp" / "summary.json").exists()  # written once, by rank 0


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_a_tagger_on_two_processes_equals_one_with_batches_smaller_than_the_processes(tmp_path):
    """Under torchrun the tagger failed at its first step ('DistributedDataParallel' object has no
    attribute 'loss'), and a batch of fewer examples than processes (an epoch's last) failed in
    every task: a process with no example ran an empty batch. It now runs a stand-in weighted 0."""
    conll = tmp_path / "t.conll"
    # 13 sentences: batches 4, 4, 4, 1; the four one-word ones, sorted into a batch, use no CRF transition (DDP waited for their gradient)
    conll.write_text("the O\nU.S. B-LOC\nsaid O\n\nAnna B-PER\nis O\nbig O\n\nBob B-PER\nleft O\n\n" * 3 + "Hi O\n\nYes O\n\n" * 2)
    values = {"train": [str(conll)], "scheme": "iob2", "hidden_size": 4, "word_embedding_size": 4, "char_embedding_size": 4, "char_hidden_size": 2,
              "dropout": 0.0, "batch_size": 4, "max_steps": 8, "lr": 0.05, "progress": False, "seed": 1, **LINEAR_STEP}  # fmt: skip
    torch.set_num_threads(1)
    from rnnkit.runs import start

    start("tagger", values, tmp_path / "single")
    spawn(values, str(tmp_path / "ddp"), "tagger")
    assert_same_weights(tmp_path / "single", tmp_path / "ddp", reduction=4 * 3)
    assert "crf.transitions" in load_file(tmp_path / "ddp" / "last.safetensors")


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_two_processes_share_rank_0s_default_run_folder_and_resume_together(tmp_path):
    """With the default run folder taken, each process chose its own (runs/x-2 and runs/x-3) and
    the test evaluation failed; a resume under torchrun took the run's lock in every process."""
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n")
    values = {"train": [str(data)], "valid": str(data), "test": str(data), "batch_size": 8, "cell": "gru", "embedding_size": 8, "hidden_size": 16, "dropout": 0.0,
              "max_steps": 8, "eval_every": 4, "lr": 0.01, "progress": False, "seed": 3, **LINEAR_STEP}  # fmt: skip
    torch.set_num_threads(1)
    from rnnkit.runs import start

    (tmp_path / "runs" / "names-char-gru").mkdir(parents=True)
    (tmp_path / "runs" / "names-char-gru" / "mine.txt").write_text("a folder of the user's")
    spawn(values, None, "lm", "start", str(tmp_path))
    made = sorted(p.name for p in (tmp_path / "runs").iterdir())
    assert made == ["names-char-gru", "names-char-gru-2"] and (tmp_path / "runs" / "names-char-gru-2" / "summary.json").exists()
    start("lm", values, tmp_path / "whole")
    start("lm", {**values, "stop_at_step": 4}, tmp_path / "halves")
    spawn({"progress": False}, str(tmp_path / "halves"), "lm", "resume")
    assert_same_weights(tmp_path / "whole", tmp_path / "halves", reduction=8 * 8)


def test_a_process_whose_peer_stopped_says_so_in_one_line(monkeypatch, capsys):
    """Under torchrun the other processes printed gloo's traceback ("Connection closed by peer")
    when one stopped on a bad input, which it had said in one line."""
    from rnnkit import cli

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    assert cli._peer_stopped(RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242"))
    assert not cli._peer_stopped(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))  # a bug keeps its traceback

    def verb(args):
        raise RuntimeError("[../gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:4242")

    monkeypatch.setattr(cli, "verb_module", lambda name: type("Verb", (), {"run": staticmethod(verb)}))
    assert cli.main(["score", "run", "text"]) == 2
    assert capsys.readouterr().err == "rnnkit score: error: another process of this torchrun job stopped (its own message says why), so this one stops too\n"


def test_a_stream_with_fewer_columns_than_processes_is_refused_before_the_run_folder(tmp_path):
    """It was refused at the first step, after "run directory: R" was printed."""
    from rnnkit.distributed import Shard
    from rnnkit.errors import UsageError
    from rnnkit.models import build_model
    from rnnkit.runs import _check_ready
    from rnnkit.tasks.language_model import LanguageModelTask

    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n")
    task, _ = LanguageModelTask.prepare(LanguageModelTask.data_config({"train": [str(data)], "batching": "stream", "batch_size": 1, "bptt": 4}))
    model = build_model(task.model_kind, task.model_config({"hidden_size": 4, "embedding_size": 4}))
    _check_ready(task, model)  # one process: one column is enough
    with pytest.raises(UsageError, match=r"--batch-size 1: a stream has a column per sequence and each of the 2 processes needs one"):
        _check_ready(task, model, Shard(1, 2))
