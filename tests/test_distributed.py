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


def _worker(rank: int, world: int, port: int, values: dict, run_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from rnnkit.runs import start

    try:
        start("lm", values, run_dir)
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
@pytest.mark.parametrize("batching", ["sentences", "stream"])
def test_two_processes_equal_one_on_the_same_global_batch(tmp_path, batching):
    data = tmp_path / "names.txt"
    data.write_text("\n".join(NAMES) + "\n")
    values = {
        "train": [str(data)], "level": "char", "batching": batching, "batch_size": 8, "cell": "gru",
        "embedding_size": 8, "hidden_size": 16, "dropout": 0.0, "max_steps": 6, "eval_every": 3, "lr": 0.01,
        "progress": False, "seed": 3, **({"bptt": 6} if batching == "stream" else {}),  # the chunk length of a stream only
    }  # fmt: skip
    torch.set_num_threads(1)
    from rnnkit.runs import start

    start("lm", values, tmp_path / "single")
    mp.spawn(_worker, args=(2, free_port(), values, str(tmp_path / "ddp")), nprocs=2, join=True)
    one, two = load_file(tmp_path / "single" / "last.safetensors"), load_file(tmp_path / "ddp" / "last.safetensors")
    assert one.keys() == two.keys()
    for key in one:
        assert_equal_up_to_rounding(one[key], two[key], reduction=8 * 6)  # float32 sums over a global batch of 8 × 6 tokens
    assert (tmp_path / "ddp" / "summary.json").exists()  # written once, by rank 0
