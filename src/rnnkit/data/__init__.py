"""Data: reading text, tokenizers, vocabularies, batches."""

from .text import DataError

__all__ = ["DataError"]
