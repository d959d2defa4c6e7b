"""A language model's text from 10 MB to 1 GB (issue 19): preparation speed, peak memory of the whole
``rnnkit train lm`` process, time to the first training step on a cached rerun, training tokens/s.

    python benchmarks/scale.py                                   # 10 MB and 100 MB, char and word
    python benchmarks/scale.py --sizes 10 100 1000 --levels char word
    python benchmarks/scale.py --sizes 10 --baseline 8287b87     # the code before prepared corpora, for the ratio
    python benchmarks/scale.py --sizes 10 --clean                # and delete the corpora and the cache afterwards
    python benchmarks/scale.py --batch-cost DIR10 DIR100         # ms per batch read from prepared corpora (rnnkit prepare --out)

The corpora are the Penn Treebank's training lines (``/work/shared/data/ptb/ptb.train.txt`` or
``--source``), shuffled and repeated to each size, written to ``--workdir`` (default
``/tmp/rnnkit-scale``; never the project). For each size and level:

* a cold run, ``rnnkit train lm FILE --level L --batching stream --max-steps N`` with an empty cache
  (``RNNKIT_CACHE``): the preparation time and MB/s (from its "prepared ... in" line) and the peak
  resident memory of the process (``/usr/bin/time -v``: preparation and training);
* a cached run, the same command again: the seconds from the start of the process to the end of its
  first training step (when ``metrics.csv`` gets its first row, ``--log-every 1``), its peak resident
  memory (training only), and the training tokens/s (median of the metrics rows after the third);
  beside it, the seconds a process takes just to import rnnkit and torch and load the compiled loops
  (part of the time to the first step, whatever the corpus).

Valid and test are split off with fractions that make each about 50 KB (evaluation time does not
grow with the corpus). ``--baseline REF`` runs the same command once with the code of git revision
REF (a worktree under ``--workdir``), which prepares nothing and keeps everything in memory.
The training runs use the compiled CPU loops (``RNNKIT_COMPILED_LOOPS`` as set).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PTB = Path("/work/shared/data/ptb/ptb.train.txt")


def make_corpus(source: Path, megabytes: int, workdir: Path) -> Path:
    """``source``'s lines shuffled (a new order each repetition) and repeated to ``megabytes`` MB."""
    path = workdir / f"{source.stem}-{megabytes}MB.txt"
    size = megabytes * 1_000_000
    if path.exists() and path.stat().st_size >= size:
        return path
    lines = source.read_text(encoding="utf-8").splitlines(keepends=True)
    rng, written = random.Random(0), 0
    with path.open("w", encoding="utf-8") as out:
        while written < size:
            rng.shuffle(lines)
            for line in lines:
                out.write(line)
                written += len(line.encode("utf-8"))
                if written >= size:
                    break
    return path


def timed_run(command: list[str], env: dict, metrics: Path | None = None) -> dict:
    """Run ``command`` under /usr/bin/time -v: wall seconds, peak RSS (MB), stderr, and the seconds
    until ``metrics`` got its first training row."""
    start = time.perf_counter()
    process = subprocess.Popen(["/usr/bin/time", "-v", *command], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_step = None
    while process.poll() is None:
        if first_step is None and metrics is not None and metrics.exists() and ",train," in metrics.read_text():
            first_step = time.perf_counter() - start
        time.sleep(0.05)
    stdout, stderr = process.communicate()
    wall = time.perf_counter() - start
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{stdout[-2000:]}\n{stderr[-4000:]}")
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr).group(1)) / 1024
    return {"wall_s": wall, "peak_rss_mb": peak, "first_step_s": first_step, "stderr": stderr}


def tokens_per_second(run: Path) -> float | None:
    with (run / "metrics.csv").open() as handle:
        rates = [float(row["tokens_per_s"]) for row in csv.DictReader(handle) if row["split"] == "train" and row["tokens_per_s"]]
    return statistics.median(rates[3:]) if len(rates) > 3 else None


def train_command(python: str, corpus: Path, level: str, run: Path, args, fraction: float) -> list[str]:
    return [
        python, "-m", "rnnkit.cli", "train", "lm", str(corpus), "--level", level, "--batching", "stream", "--max-steps", str(args.steps),
        "--split", f"{fraction:.3g}", f"{fraction:.3g}", "--run", str(run), "--no-progress", "--log-every", "1", "--seed", "0",
    ]  # fmt: skip


def measure(corpus: Path, level: str, args, workdir: Path, baseline: Path | None = None) -> dict:
    size = corpus.stat().st_size
    fraction = min(0.05, 50_000 / size)
    env = {**os.environ, "RNNKIT_CACHE": str(workdir / "cache"), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    runs = workdir / "runs"
    shutil.rmtree(runs, ignore_errors=True)
    if baseline is not None:
        env["PYTHONPATH"] = str(baseline / "src")
        result = timed_run(train_command(sys.executable, corpus, level, runs / "baseline", args, fraction), env, runs / "baseline" / "metrics.csv")
        return {"code": "baseline", "peak_rss_mb": result["peak_rss_mb"], "first_step_s": result["first_step_s"], "tokens_per_s": tokens_per_second(runs / "baseline"), "wall_s": result["wall_s"]}
    shutil.rmtree(workdir / "cache", ignore_errors=True)
    cold = timed_run(train_command(sys.executable, corpus, level, runs / "cold", args, fraction), env)
    prepared = re.search(r"prepared (\S+) in ([\d.]+) s", cold["stderr"])
    prep_s = float(prepared.group(2)) if prepared else None
    imports = timed_run([sys.executable, "-c", "import rnnkit.cli, rnnkit.runs; from rnnkit.engines.compiled import compiled_loops; compiled_loops()"], env)
    warm = timed_run(train_command(sys.executable, corpus, level, runs / "warm", args, fraction), env, runs / "warm" / "metrics.csv")
    if "prepared" in warm["stderr"]:
        raise RuntimeError("the cached run prepared the corpus again")
    return {
        "code": "prepared corpus",
        "prep_s": prep_s,
        "prep_mb_s": size / 1e6 / prep_s if prep_s else None,
        "peak_rss_cold_mb": cold["peak_rss_mb"],
        "peak_rss_mb": warm["peak_rss_mb"],
        "first_step_s": warm["first_step_s"],
        "import_s": imports["wall_s"],
        "tokens_per_s": tokens_per_second(runs / "warm"),
        "wall_s": cold["wall_s"],
    }


def batch_cost(directories: list[Path], batches: int = 200, rounds: int = 5) -> None:
    """CPU milliseconds per training batch (32 × 64) read from prepared corpora, stream and sentence
    batching, no model: the best of ``rounds`` interleaved rounds, so that all see the same load."""
    from rnnkit.data.batches import StreamBatches
    from rnnkit.data.corpus import Corpus, CorpusSentenceBatches

    stores = {directory: Corpus.open(directory).splits["train"] for directory in directories}
    best: dict = {}
    for round_ in range(rounds):
        for directory, split in stores.items():
            for kind, reader in (("stream", StreamBatches(split.ids, 32, 64)), ("sentences", CorpusSentenceBatches(split, 32))):
                start = time.process_time()
                for _ in zip(range(batches), reader.iterate(0, max(0, len(reader) - batches * (round_ + 1)))):
                    pass
                spent = (time.process_time() - start) / batches * 1e3
                best[directory, kind] = min(best.get((directory, kind), spent), spent)
    for directory, split in stores.items():
        print(f"{directory} ({split.num_tokens:,} tokens): stream {best[directory, 'stream']:.2f} ms, sentences {best[directory, 'sentences']:.2f} ms per batch (CPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100], help="corpus sizes in MB")
    parser.add_argument("--levels", nargs="+", default=["char", "word"])
    parser.add_argument("--steps", type=int, default=30, help="training steps per run")
    parser.add_argument("--source", type=Path, default=PTB, help="text whose lines make the corpora")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rnnkit-scale"))
    parser.add_argument("--baseline", help="a git revision whose code to measure too (same command, no prepared corpus)")
    parser.add_argument("--json", type=Path, help="write the rows here too")
    parser.add_argument("--clean", action="store_true", help="delete the corpora, cache and runs afterwards")
    parser.add_argument("--batch-cost", type=Path, nargs="+", metavar="DIR", help="only time reading batches from these prepared corpora")
    args = parser.parse_args()
    if args.batch_cost:
        return batch_cost(args.batch_cost)
    if not args.source.exists():
        sys.exit(f"{args.source}: no such file (--source)")
    args.workdir.mkdir(parents=True, exist_ok=True)
    baseline = None
    if args.baseline:
        baseline = args.workdir / "baseline"
        if not baseline.exists():
            subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(baseline), args.baseline], check=True)
    rows = []
    print("| corpus | level | code | prep s | prep MB/s | peak RSS cold (MB) | peak RSS cached (MB) | first step (s) | of which imports (s) | tokens/s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    try:
        for megabytes in args.sizes:
            corpus = make_corpus(args.source, megabytes, args.workdir)
            for level in args.levels:
                for code in ([None, baseline] if baseline is not None else [None]):
                    row = {"corpus_mb": megabytes, "level": level, **measure(corpus, level, args, args.workdir, code)}
                    rows.append(row)
                    cell = lambda key, fmt: "" if row.get(key) is None else format(row[key], fmt)  # noqa: E731
                    print(
                        f"| {megabytes} MB | {level} | {row['code']} | {cell('prep_s', '.1f')} | {cell('prep_mb_s', '.1f')} | "
                        f"{cell('peak_rss_cold_mb', '.0f')} | {cell('peak_rss_mb', '.0f')} | {cell('first_step_s', '.1f')} | {cell('import_s', '.1f')} | {cell('tokens_per_s', ',.0f')} |",
                        flush=True,
                    )
    finally:
        if args.json:
            args.json.write_text(json.dumps(rows, indent=1))
        if args.clean:
            for name in ("cache", "runs"):
                shutil.rmtree(args.workdir / name, ignore_errors=True)
            for corpus in args.workdir.glob("*MB.txt"):
                corpus.unlink()
            if baseline is not None:
                subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(baseline)], check=False)


if __name__ == "__main__":
    main()
