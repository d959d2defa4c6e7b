"""Data-parallel training over several processes (GPUs, machines) with torch.distributed.

Launch any ``rnnkit train`` command with torchrun; nothing else changes::

    torchrun --nproc_per_node 2 -m rnnkit.cli train lm names.txt --batch-size 64
    torchrun --nproc_per_node 2 -m rnnkit.cli -- train lm names.txt --run runs/x   # "--": torchrun takes --run for its --run-path
    torchrun --nnodes 2 --node_rank 0 --master_addr HOST --nproc_per_node 8 -m rnnkit.cli train ...

How the work is shared: every process reads the same batches in the same order (they are
deterministic per seed and epoch); each takes its share of every batch's examples (every
``world``-th, starting at its rank; streams: every ``world``-th column), so ``--batch-size`` is the
global batch. Gradients are summed over processes by DistributedDataParallel, each process having
divided its summed loss by the global number of tokens (times ``world``, which DDP's averaging
undoes), so a step equals single-process training on the same global batch, up to rounding, when
it draws nothing at random: dropout masks come from each process's own generator, so with dropout
the two differ as two seeds do. A process whose share of a batch is empty (a batch of fewer
examples than processes) runs a stand-in weighted 0 (``share_of``). Rank 0 alone writes the run
directory, metrics and checkpoints and chooses the default run folder; every process evaluates, so
all take the same decisions.
The backend is NCCL on GPUs and gloo on CPUs.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Shard:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


SINGLE = Shard()


@dataclass(frozen=True)
class StandIn:
    """A batch a process trains on with weight zero (``share_of``): the trainer takes its loss times
    0, so the process joins the step's gradient sum (DDP's all-reduce waits for every process)
    adding nothing."""

    batch: object


def share_of(items: list, shard: Shard) -> tuple[list, bool]:
    """This process's share of a batch's items, every ``world``-th from its rank, and whether it is a
    stand-in: a batch of fewer items than processes (an epoch's last, or a --batch-size below the
    number of processes) leaves some processes none, and an empty batch cannot be run; those run
    the batch's first item as a ``StandIn``, which adds nothing."""
    mine = items[shard.rank :: shard.world]
    return (mine, False) if mine or not items else (items[:1], True)


def setup() -> Shard:
    """The process's share: initializes the process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1 or not dist.is_available():
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group(backend)
    return Shard(dist.get_rank(), dist.get_world_size())


def local_device(shard: Shard, requested: torch.device) -> torch.device:
    """Each process on its own GPU (LOCAL_RANK) when the run uses CUDA."""
    if shard.world > 1 and requested.type == "cuda":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return requested


def all_sum(value: float, shard: Shard, device: torch.device) -> float:
    if shard.world == 1:
        return value
    tensor = torch.tensor([float(value)], dtype=torch.float64, device=device if device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    return float(tensor)


def barrier(shard: Shard) -> None:
    if shard.world > 1:
        dist.barrier()


def broadcast(value, shard: Shard):
    """Rank 0's ``value`` (any picklable object of rnnkit's own making) on every process."""
    if shard.world == 1:
        return value
    values = [value]
    dist.broadcast_object_list(values, src=0)
    return values[0]


def broadcast_flag(flag: bool, shard: Shard) -> bool:
    """Rank 0's value of ``flag`` on every process."""
    return bool(broadcast(flag, shard))
