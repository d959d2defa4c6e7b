"""Analysis: recording what recurrent layers compute, gradient flow over time, the agreement task,
and hidden-unit reports."""

from .recording import Recording, recording

__all__ = ["Recording", "progress", "recording"]


def progress(steps, what: str, unit: str = "step"):
    """``steps`` (a count, or the items themselves) with a progress bar on stderr (tqdm, as
    training's), none when stderr is not a terminal: these experiments run for minutes, and a log
    should not fill with bars."""
    from tqdm.auto import tqdm

    return tqdm(range(steps) if isinstance(steps, int) else steps, desc=what, unit=unit, leave=False, dynamic_ncols=True, disable=None)
