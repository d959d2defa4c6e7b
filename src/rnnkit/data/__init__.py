"""Data: reading text, tokenizers, vocabularies, batches."""

from .textio import DataError, read_lines, read_text

__all__ = ["DataError", "read_lines", "read_text"]
