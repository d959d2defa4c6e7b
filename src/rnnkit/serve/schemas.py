"""The requests the server accepts, as pydantic models: types, ranges and sizes checked before any
model runs, so that a bad request gets a 4xx naming the field and what is wrong with it.

Every request names its ``model`` (a name from ``GET /api/models``); it may be left out when only
one loaded model answers the verb. Text requests take ``text`` (one) or ``texts`` (several).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..data.textio import BOM, split_lines
from ..data.tokenizers import is_blank_text

MAX_TEXT = 2000  # characters per text
MAX_MODEL_NAME = 255  # characters: a folder name's limit on Linux and macOS (NAME_MAX, bytes, which are at least as many)
MAX_TEXTS = 64  # texts per request
MAX_SAMPLES = 20  # samples per generate request
MAX_LENGTH = 500  # tokens per sample
MAX_STEPS = 512  # time steps per composed piece
MAX_PIECES = 4  # pieces per compose request
MAX_BEAM = 10
MAX_BODY = 1 << 20  # bytes per request body
MAX_ATTENTION = 1_000_000  # attention weights per translate reply, at most (about 21 MB of JSON)

Text = Field(default=None, min_length=1, max_length=MAX_TEXT)
Seed = Field(default=None, ge=0, lt=2**63)


def _one_line(text: str, which: str) -> str:
    """A text as the command line reads a line of its input: a pasted file's BOM and one final line
    break (a line read from a file with it) dropped; a line break inside, or nothing but white space
    and invisible characters (``is_blank_text``), is a ``ValueError`` (a 422 naming the field). A
    character-level run would read the breaks as characters, where the command line splits lines."""
    lines = split_lines(text.removeprefix(BOM))
    if len(lines) > 1:
        raise ValueError(f"{which or 'it '}holds a line break: a text is one line, as the command line reads its input (several lines: several texts)")
    if not lines or is_blank_text(lines[0]):  # every verb alike (the command line prints an empty line)
        raise ValueError(f"{which + 'is ' if which else ''}blank (white space or invisible characters only): there is nothing in it to read")
    return lines[0]


class Request(BaseModel):
    # strict: "2" for a number or "yes" for a switch is a 422 naming the field, not quietly converted
    model_config = ConfigDict(extra="forbid", strict=True)

    # a run is named by its folder, whose name holds at most NAME_MAX (255) bytes: every loaded run fits,
    # where a limit of 200 listed a run in /api/models that no request could name
    model: str | None = Field(default=None, max_length=MAX_MODEL_NAME)


class TextsRequest(Request):
    text: str | None = Text
    # the sizes as JSON Schema constraints of each item, so that /openapi.json says what is refused
    texts: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] | None = Field(default=None, min_length=1, max_length=MAX_TEXTS)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, text: str | None) -> str | None:
        return None if text is None else _one_line(text, "")

    @field_validator("texts")
    @classmethod
    def _texts_not_blank(cls, texts: list[str] | None) -> list[str] | None:
        return None if texts is None else [_one_line(text, f"text {i} ") for i, text in enumerate(texts)]

    @model_validator(mode="after")
    def _one_of(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give either 'text' (one string) or 'texts' (a list of strings)")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts)


class TagRequest(TextsRequest):
    pass


class ClassifyRequest(TextsRequest):
    pass


class ScoreRequest(TextsRequest):
    pass


class TranslateRequest(TextsRequest):
    beam: int | None = Field(default=None, ge=1, le=MAX_BEAM, description="beam width (default: the run's)")
    nbest: int = Field(default=1, ge=1, le=MAX_BEAM, description="translations per text, at most the beam width")
    replace_unk: bool = False
    attention: bool = Field(default=True, description="return the attention weights of each translation")


class GenerateRequest(Request):
    num: int = Field(default=5, ge=1, le=MAX_SAMPLES)
    temperature: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    top_k: int | None = Field(default=None, ge=1, le=100_000)
    top_p: float | None = Field(default=None, gt=0, le=1, allow_inf_nan=False)
    greedy: bool = False
    prime: str = Field(default="", max_length=MAX_TEXT)
    max_length: int = Field(default=100, ge=1, le=MAX_LENGTH)
    seed: int | None = Seed

    @field_validator("prime")
    @classmethod
    def _prime_without_bom(cls, prime: str) -> str:
        return prime.removeprefix(BOM)  # as rnnkit sample --prime reads it


class ComposeRequest(Request):
    steps: int = Field(default=64, ge=1, le=MAX_STEPS)
    num: int = Field(default=1, ge=1, le=MAX_PIECES)
    temperature: float = Field(default=1.0, gt=0, le=100, allow_inf_nan=False)
    seed: int | None = Seed
    step_seconds: float | None = Field(default=None, ge=1e-4, le=16, allow_inf_nan=False,
                                       description="seconds per step, as rnnkit compose takes (default: the run's)")
    program: int = Field(default=0, ge=0, le=127)
    png: bool = Field(default=True, description="also draw each piece's piano roll (PNG, base64)")
