"""The course's date-normalisation task: human-readable dates -> ISO 8601 (YYYY-MM-DD).

Dates are drawn uniformly from 1950-01-01 to 2049-12-31 (so that a two-digit year names exactly one
year) and written in one of many formats, the way Babel formats dates for a locale: "3 may 1979",
"tuesday, march 2, 2021", "12/25/49", "25.12.49", "le 2 mai 1979" with French... then lowercased,
commas removed (as in the course). Generation is deterministic for a seed.
"""

from __future__ import annotations

import datetime
import random

from ..errors import require
from .textio import DataError

FORMATS = (
    "short", "medium", "long", "full", "d MMM y", "d MMMM y", "dd MMM y", "d MMM, y", "d MMMM, y",
    "dd, MMM y", "d MM yy", "MMMM d y", "MMMM d, y", "dd.MM.yy", "EEEE d MMMM y", "y-MM-dd",
)  # fmt: skip
FIRST = datetime.date(1950, 1, 1).toordinal()
LAST = datetime.date(2049, 12, 31).toordinal()


def human_date(date: datetime.date, fmt: str, locale: str = "en_US") -> str:
    babel_dates = require("babel.dates", extra="translation", purpose="the date task formats dates")
    text = babel_dates.format_date(date, format=fmt, locale=locale)
    return text.lower().replace(",", "")


def check_locales(locales) -> None:
    """A one-line ``DataError`` for a name Babel has no locale of (``xx_YY``, ``en-US``: Babel writes
    ``en_US``), before any date is made; Babel's own error was a traceback from deep in its formatting."""
    babel = require("babel", extra="translation", purpose="the date task formats dates")
    for name in locales:
        try:
            babel.Locale.parse(name)
        except (ValueError, TypeError, babel.UnknownLocaleError):
            raise DataError(f"--date-locales: unknown locale {name!r}; Babel names a locale as language_TERRITORY (en_US, de_DE, fr_FR)") from None


def generate_dates(n: int, seed: int, locales: tuple[str, ...] = ("en_US",)) -> list[tuple[str, str]]:
    """``n`` (human-readable, ISO) pairs, deterministic for ``seed``."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        date = datetime.date.fromordinal(rng.randint(FIRST, LAST))
        pairs.append((human_date(date, rng.choice(FORMATS), rng.choice(locales)), date.isoformat()))
    return pairs
