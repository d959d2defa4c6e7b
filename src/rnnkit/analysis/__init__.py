"""Analysis: recording what recurrent layers compute, gradient flow over time, the agreement task,
and hidden-unit reports."""

from .recording import Recording, recording

__all__ = ["Recording", "recording"]
