"""Pictures: a run's loss curve, a confusion matrix, attention, a piano roll; and the helpers every
picture in rnnkit uses (a figure when matplotlib is installed, finished alike, written atomically)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

from .files import atomic_write


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or None when matplotlib is not installed
    (``pip install 'rnnkit[plot]'``): pictures are optional."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def new_figure(width: float = 7, height: float = 4):
    """``(figure, axes)``: a figure of ``width`` x ``height`` inches with one axes, or ``(None, None)``
    when matplotlib is not installed."""
    plt = pyplot()
    if plt is None:
        return None, None
    return plt.subplots(figsize=(width, height), dpi=110)


def save_figure(figure, path, *, xlabel: str, ylabel: str, title: str = "", legend: bool = False,
                grid: str | None = None) -> bool:  # fmt: skip
    """Finish ``figure`` as every picture in rnnkit is finished: its axes labelled, grid lines
    (``grid``: ``"major"``, or ``"both"`` on a log scale) and a ``legend`` when asked, the ``title``
    in small type; then write it to ``path`` as a PNG, atomically (never half-written), and close it."""
    import matplotlib.pyplot as plt

    axes = figure.axes[0]
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    if grid:
        axes.grid(alpha=0.3, which=grid)
    if legend:
        axes.legend()
    if title:
        axes.set_title(literal([title])[0], fontsize=9)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a label in a script the font lacks (CJK) is drawn as boxes: not a Python warning with a source path
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        figure.tight_layout()
        figure.savefig(buffer, format="png")
    plt.close(figure)
    atomic_write(Path(path), buffer.getvalue())
    return True


def plot_losses(rows: list[dict], path: Path) -> bool:
    """Training and validation loss per token against the step, as a PNG. False when matplotlib is
    not installed (``pip install 'rnnkit[plot]'``) or there is nothing to plot."""
    series = {split: [(int(r["step"]), float(r["loss"])) for r in rows if r["split"] == split] for split in ("train", "valid")}
    if not any(series.values()):
        return False
    figure, axes = new_figure()
    if figure is None:
        return False
    for split, style in (("train", "-"), ("valid", "o-")):
        if series[split]:
            steps, losses = zip(*series[split])
            alone = len(steps) == 1  # a line through one point draws nothing: a run logged once showed an empty plot
            axes.plot(steps, losses, "o" if alone else style, label=split, markersize=3)
    return save_figure(figure, path, xlabel="step", ylabel="loss per token (nats)", grid="major", legend=True)


def literal(texts) -> list[str]:
    """Users' labels and tokens as matplotlib draws them letter for letter: a ``$`` starts its math
    mode ("$", "$$$" price labels were a ParseException and a lost run), so each one is escaped."""
    return [str(text).replace("$", r"\$") for text in texts]


def plot_confusion(matrix: list[list[int]], labels: list[str], path: Path, title: str = "") -> bool:
    """A confusion matrix as a PNG (rows: true class, columns: predicted), counts in the cells."""
    k = len(labels)
    figure, axes = new_figure(1.2 + 0.7 * k, 1.0 + 0.6 * k)
    if figure is None:
        return False
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(k), literal(labels), rotation=30 if max(map(len, labels)) > 6 else 0, ha="right" if max(map(len, labels)) > 6 else "center")
    axes.set_yticks(range(k), literal(labels))
    peak = max(max(row) for row in matrix) or 1
    for i in range(k):
        for j in range(k):
            axes.text(j, i, str(matrix[i][j]), ha="center", va="center", color="white" if matrix[i][j] > peak / 2 else "black", fontsize=8)
    return save_figure(figure, path, xlabel="predicted", ylabel="true", title=title)


def plot_attention(weights: list[list[float]], source: list[str], target: list[str], path: Path) -> bool:
    """Attention weights as a heat map: one row per output token, one column per source token."""
    rows = [row[: len(source)] for row in weights[: len(target)]]
    figure, axes = new_figure(1.5 + 0.45 * len(source), 1.2 + 0.35 * len(target))
    if figure is None:
        return False
    axes.imshow(rows, cmap="Greys", vmin=0, vmax=1, aspect="auto")
    axes.set_xticks(range(len(source)), literal(source), rotation=60, ha="right", fontsize=8)
    axes.set_yticks(range(len(rows)), literal(target[: len(rows)]), fontsize=8)
    return save_figure(figure, path, xlabel="source", ylabel="output")


def plot_piano_roll(sequence: list[list[int]], path: Path, title: str = "") -> bool:
    """A piano roll: time steps across, pitches up, a mark where a note sounds."""
    pitches = [p for step in sequence for p in step] or [60]
    low, high = min(pitches) - 2, max(pitches) + 2
    grid = [[0.0] * len(sequence) for _ in range(high - low + 1)]
    for t, step in enumerate(sequence):
        for p in step:
            grid[p - low][t] = 1.0
    figure, axes = new_figure(min(16, 2 + 0.12 * len(sequence)), 3.5)
    if figure is None:
        return False
    axes.imshow(grid, origin="lower", aspect="auto", cmap="Greys", interpolation="nearest", extent=(0, len(sequence), low - 0.5, high + 0.5))
    return save_figure(figure, path, xlabel="time step", ylabel="MIDI pitch", title=title)
