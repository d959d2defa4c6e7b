"""Reading a pickle file without running code from it.

A pickle is a program: ``pickle.load`` calls whatever callables the file names (``os.system``,
say), so a data file could run code on ``rnnkit train music``. ``load_data`` unpickles with a
restricted ``Unpickler`` whose ``find_class`` knows three callables only, each rebuilding numbers
or bytes: numpy's dtype and scalar constructors, limited to boolean, integer and floating dtypes
(the standard JSB Chorales ``.pkl`` stores its pitches as numpy scalars), and the latin1 encoding
that protocol 2 uses for bytes. Everything else in the file must be
builtin containers, strings and numbers, which unpickling builds without calling anything. This is
the restricted-unpickler recipe of the Python documentation ("Restricting Globals").
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

from .errors import DataError

NUMERIC_KINDS = "biuf"  # numpy dtype kinds: boolean, signed and unsigned integer, floating point


def _numeric_dtype(*args):
    import numpy

    dtype = numpy.dtype(*args)
    if dtype.kind not in NUMERIC_KINDS:
        raise pickle.UnpicklingError(f"a numpy dtype {dtype} (only numbers are read)")
    return dtype


def _numeric_scalar(dtype, data=None):
    import numpy

    if isinstance(data, str):  # a Python 2 byte string, decoded as latin1 (one character per byte)
        data = data.encode("latin1")
    if not isinstance(dtype, numpy.dtype) or dtype.kind not in NUMERIC_KINDS or not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError("a numpy scalar that is not a number")
    return numpy.frombuffer(data, dtype=dtype, count=1)[0]


def _latin1_bytes(text, encoding="latin1"):
    """How protocol 2 stores ``bytes`` when Python 3 writes it: ``_codecs.encode(text, "latin1")``."""
    if not isinstance(text, str) or encoding != "latin1":
        raise pickle.UnpicklingError("_codecs.encode other than bytes from latin1")
    return text.encode("latin1")


ALLOWED = {
    ("_codecs", "encode"): _latin1_bytes,
    ("numpy", "dtype"): _numeric_dtype,
    ("numpy.core.multiarray", "scalar"): _numeric_scalar,
    ("numpy._core.multiarray", "scalar"): _numeric_scalar,
}


class _Restricted(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in ALLOWED:
            return ALLOWED[(module, name)]
        raise pickle.UnpicklingError(f"it names {module}.{name}, which rnnkit does not load from a data file (only containers and numbers)")


def load_data(path: str | Path):
    """The containers and numbers pickled in ``path`` (protocol 0 to 5, ``latin1`` for Python 2
    strings); a one-line ``DataError`` naming the file for anything else, code included."""
    path = Path(path)
    try:
        return _Restricted(io.BytesIO(path.read_bytes()), encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise DataError(f"{path}: refused: {error}") from None
    except ImportError:
        raise DataError(f"{path}: holds numpy numbers; reading it needs numpy (pip install numpy)") from None
    except OSError as error:
        raise DataError(f"{path}: cannot be read ({error.strerror or error})") from None
    except Exception as error:  # noqa: BLE001 (a truncated or corrupt pickle raises many kinds)
        raise DataError(f"{path}: not a readable pickle ({type(error).__name__})") from None
