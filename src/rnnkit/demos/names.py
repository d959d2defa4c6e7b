"""The main job (``rnnkit demo``, the README's first command): a character-level language model of
first names, trained in about a minute and a half on two CPU cores, then sampled and used to score.

The names come from an installed dependency, the ``names`` package (the 1990 US census lists of
male and female first names, 5,494 in all), so the demo needs no download and no shared data.
"""

from __future__ import annotations

import importlib.resources
import itertools
import shutil
from pathlib import Path

from ..decoding import SamplingOptions
from ..runs import DEMO_MARK, DEMO_MARK_TEXT, open_run, start
from ..files import RunDir
from ..errors import UsageError


def first_names() -> list[str]:
    """The census first names, lowercased, in the package's order (most frequent first per list)."""
    try:
        package = importlib.resources.files("names")
    except ModuleNotFoundError:
        raise UsageError("the demo's names come from the 'names' package: pip install names") from None
    out, seen = [], set()
    for filename in ("dist.female.first", "dist.male.first"):
        for line in (package / filename).read_text(encoding="utf-8").splitlines():
            name = line.split()[0].lower() if line.strip() else ""
            if name and name not in seen:
                seen.add(name)
                out.append(name)
    return out


def demo_run_path() -> str:
    """``runs/demo``, or the first of ``runs/demo-2``, ``-3`` ... that is absent or a demo run's: a
    demo run the user trained on (``--resume``, as the demo's time-limit line advises) is theirs,
    and the demo, run again, goes beside it (``make demo`` keeps working)."""
    for n in itertools.count(1):
        path = "runs/demo" if n == 1 else f"runs/demo-{n}"
        if not Path(path).exists() or (Path(path) / DEMO_MARK).exists():
            return path
    raise AssertionError  # unreachable


def why_taken(path: Path) -> str:
    """What keeps the demo from replacing ``path``, as a predicate of it: a run the user trained on,
    or something that is no run at all (a file, a folder of their own)."""
    if not path.is_dir():
        return "is a file, not a demo run"
    return "holds a run you trained on" if (path / "config.json").exists() else "is a folder that is not a demo run"


def run_demo(run_path: str | None = None, time_limit: float = 90.0, quick: bool = False) -> None:
    """Train, sample and score the names demo in ``run_path`` (None: ``demo_run_path()``)."""
    if run_path is None:
        run_path = demo_run_path()
        if run_path != "runs/demo":
            print(f"runs/demo {why_taken(Path('runs/demo'))}: this demo goes to {run_path}")
    run = RunDir(run_path)
    if run.path.exists() and not run.file(DEMO_MARK).exists():  # refused before anything is written
        kept = " (a demo run you resumed is yours now)" if run.file("config.json").exists() else ""
        raise FileExistsError(f"{run.path}: exists and is not a demo run{kept}; choose another --run")
    data_file = run.path.parent / "demo-data" / "first-names.txt"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    names = first_names()
    data_file.write_text("\n".join(names) + "\n", encoding="utf-8")
    print(f"data: {len(names)} first names from the 'names' package -> {data_file}")
    if run.path.exists():
        shutil.rmtree(run.path)  # the previous demo run; anything else is never touched
    settings = dict(
        train=[str(data_file)], level="char", batch_size=32, cell="lstm", embedding_size=32, hidden_size=256,
        dropout=0.3, epochs=2 if quick else 40, lr=4e-3, schedule="cosine", sample_every=0 if quick else 400,
        time_limit=5 if quick else time_limit, patience=6, seed=0, log_every=25,
    )  # fmt: skip
    print("training a character-level LSTM language model (x<1> = 0, each name ends with <EOS>)...")
    run.path.mkdir(parents=True)
    run.write_bytes(DEMO_MARK, DEMO_MARK_TEXT)
    try:
        start("lm", settings, run.path)
    except BaseException:  # Ctrl-C, SIGTERM, a reader gone away (| head -1): start took back what it wrote
        if not run.file("config.json").exists():  # the mark alone is no run: sample would call it one missing its config
            shutil.rmtree(run.path, ignore_errors=True)
        raise
    task, model, _, device = open_run(run.path)
    print("\nten new names (temperature 0.8):")
    for text, seen in task.generate(model, 10, SamplingOptions(temperature=0.8, max_length=30), seed=1, device=device):
        print(f"  {text:14s} {'(seen in training data)' if seen else '(novel)'}")
    print("\nP(name) = product over characters of P(y<t> | y<1..t-1>), <EOS> included:")
    for text in ("emma", "jennifer", "xqzvyk"):
        result = task.score_text(model, text, device)
        print(f"  {text:10s} log P = {result['log_prob']:7.2f}   perplexity per character {result['perplexity']:6.2f}")
    print(f"\nthe run is in {run.path}: try  rnnkit sample {run.path} --num 20  or  rnnkit score {run.path} yourname")
