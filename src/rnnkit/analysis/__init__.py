"""Analysis: recording what recurrent layers compute, gradient flow over time, the agreement task,
and hidden-unit reports."""

from .recording import Recording, recording

__all__ = ["Recording", "progress", "recording"]


def progress(total: int, what: str):
    """A progress bar of ``total`` steps on stderr (tqdm, as training's), none when stderr is not a
    terminal: these experiments train for minutes, and a log should not fill with bars."""
    from tqdm.auto import tqdm

    return tqdm(range(total), desc=what, unit="step", leave=False, dynamic_ncols=True, disable=None)
