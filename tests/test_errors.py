"""The user errors' one line: an optional library that is not installed is named with the extra
that installs it and what needed it (``rnnkit.errors.require``, used by every optional import)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rnnkit.errors import UsageError, require

SRC = Path(__file__).resolve().parents[1] / "src" / "rnnkit"


def test_require_imports_an_installed_library_and_names_the_extra_of_a_missing_one():
    assert require("json.decoder", extra="none", purpose="reading JSON").JSONDecoder is not None
    with pytest.raises(UsageError) as caught:
        require("rnnkit_no_such_library.sub", extra="export", purpose="export writes ONNX")
    assert str(caught.value) == "export writes ONNX with rnnkit_no_such_library, which is not installed: pip install 'rnnkit[export]'"


def test_every_optional_library_is_required_through_the_one_helper():
    """No module writes its own ``except ImportError: raise UsageError(...)``: the message, the extra
    and the wording stay one."""
    for path in set(SRC.rglob("*.py")) - {SRC / "errors.py"}:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"except ImportError[^\n]*:\s*\n\s*raise UsageError", text), path
