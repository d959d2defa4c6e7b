"""Files that a kill at any moment leaves either whole or absent, and the run directory made of them.

A single file (config, vocabulary, summary, a picture) is written atomically: a temporary name in
the same directory, flushed to the disk, renamed over the old one. ``RunDir`` names a run's files
and reads them back with one-line errors that name the file (``DataError``, ``CheckpointError``).
The checkpoints inside a run are ``rnnkit.training.checkpoint``'s; the layout is docs/runs.md's.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import glob
import contextlib
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_model, save_model
from torch import nn

from .data.vocab import Vocabulary
from .errors import DataError, UsageError


class CheckpointError(UsageError):
    """A run directory that cannot be resumed as it is; the message names the file and what to do."""


@contextmanager
def exclusive_lock(path: Path, waiting_for: str, timeout_s: float | None = None) -> Iterator[None]:
    """Hold an exclusive ``fcntl.flock`` on ``path`` (created if absent) while the block runs: one
    process at a time builds what it guards. The kernel drops the lock when its holder exits or is
    killed (kill -9 included), so it never goes stale. While waiting, one line on stderr:
    "rnnkit: waiting for another process <waiting_for> (<path's folder>)".

    Raises ``TimeoutError`` after ``timeout_s`` seconds of waiting (None: wait as long as it takes)."""
    with open(path, "a") as handle:
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    print(f"rnnkit: waiting for another process {waiting_for} ({path.parent})", file=sys.stderr, flush=True)
                    told = True
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"another process has held {path} for over {timeout_s:.0f} s") from None
                time.sleep(0.5)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


FILE_MODE = 0o666 & ~_umask()  # what open() would give a new file (mkstemp gives 0600)
DIR_MODE = 0o777 & ~_umask()  # what mkdir would give (mkdtemp gives 0700)


def _fsync(fd: int) -> None:
    """Flush to the disk: what a power cut needs. A killed process loses nothing that reached the
    page cache, so the crash tests (``RNNKIT_TEST_NO_FSYNC=1``) skip the wait."""
    if not os.environ.get("RNNKIT_TEST_NO_FSYNC"):
        os.fsync(fd)


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        _fsync(fd)
    finally:
        os.close(fd)


def write_target(path: Path) -> Path:
    """Where writing ``path`` goes: through a symbolic link, to the file it names (the link stays, as
    an editor's save keeps it); ``OSError`` naming ``path`` for a link to what is no regular file (a
    device such as /dev/full, a folder), which a temporary renamed over the link would replace."""
    path = Path(path)
    if not path.is_symlink():
        return path
    target = Path(os.path.realpath(path))
    if target.exists() and not target.is_file():
        raise OSError(errno.EINVAL, f"a link to {target}, which is not a regular file; give a file to write", str(path))
    return target


def atomic_write(path: Path, data: bytes | Callable[[Path], None]) -> None:
    """``path`` replaced as a unit by ``data``: bytes (flushed to disk), or a function that writes
    the new file at the path it is given (``safetensors``' ``save_model``). Readers see the old file
    or the new one, never half of one; a failed write leaves no temporary file behind. A link is
    written through (``write_target``)."""
    path = write_target(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = temporary_beside(path)
    except OSError as error:  # a read-only folder: named as the file the user asked for, not a temporary
        raise OSError(error.errno, error.strerror, str(path)) from None
    try:
        if callable(data):
            os.close(fd)
            write_with(data, Path(tmp), shown=path)
            _fsync_path(Path(tmp))
        else:
            _write_to(fd, data)
        os.replace(tmp, path)
    except OSError as error:
        Path(tmp).unlink(missing_ok=True)
        if (error.filename in (tmp, str(tmp), None) or getattr(error, "filename2", None) == str(tmp)) and error.errno is not None:
            # a full disk while writing the temporary (a copy into it names its source first): the user's file failed
            raise OSError(error.errno, error.strerror, str(path)) from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dead_temporary(name: str, folder: Path) -> bool:
    """Whether ``folder/name`` is a temporary file ``.NAME.PID-XXXX.tmp`` (``temporary_beside``) that a
    process no longer running left there (killed while writing)."""
    match = re.fullmatch(r"\..+\.(\d+)-[^.]+\.tmp", name)
    return match is not None and int(match[1]) != os.getpid() and not process_alive(int(match[1])) and (folder / name).is_file()


def temporary_beside(path: Path) -> tuple[int, str]:
    """A new temporary file ``.NAME.PID-XXXX.tmp`` beside ``path`` (its open descriptor and its name),
    with a new file's usual mode. Those a killed process left for ``path`` are removed first (never
    one of a process still running), so that kills never pile files up in the user's folder."""
    prefix = f".{path.name}."
    for stale in path.parent.glob(glob.escape(prefix) + "*-*.tmp"):
        pid = stale.name[len(prefix) :].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{prefix}{os.getpid()}-", suffix=".tmp")
    os.chmod(tmp, FILE_MODE)
    return fd, tmp


def atomic_write_all(contents: dict[Path, bytes]) -> None:
    """Several files replaced together (an export's graphs and the JSON that describes them): every
    one is written to a temporary file and flushed to disk before the first is renamed into place,
    in ``contents``' order (the describing file last), so a kill leaves the old set or the new one,
    bar the instant of the renames; a failure leaves no temporary file behind."""
    temporaries = []
    contents = {write_target(path): data for path, data in contents.items()}
    try:
        for path, data in contents.items():
            try:
                fd, tmp = temporary_beside(path)
            except OSError as error:  # a read-only folder: named as the file the user asked for
                raise OSError(error.errno, error.strerror, str(path)) from None
            temporaries.append((tmp, path))
            try:
                _write_to(fd, data)
            except OSError as error:  # write(2)'s errors (a full disk, a file-size limit) name no file
                raise OSError(error.errno, error.strerror, str(path)) from None
        for tmp, path in temporaries:
            os.replace(tmp, path)
    except BaseException as error:
        for tmp, _ in temporaries:
            Path(tmp).unlink(missing_ok=True)
        shown = dict(temporaries).get(getattr(error, "filename", None))
        if isinstance(error, OSError) and shown is not None:  # a full disk while writing a temporary
            raise OSError(error.errno, error.strerror, str(shown)) from None
        raise


def first_absent_folder(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet: the first folder that making
    ``path`` creates (None when ``path`` exists)."""
    return next((p for p in reversed([path, *path.parents]) if not p.exists()), None)


def remove_parents_made(path: Path, made: Path | None) -> None:
    """After a failed write of ``path``: its parent folders from the innermost out to ``made``
    (``first_absent_folder`` before the write), each while empty: another process may have written
    into one since. An ``--out a/b/c`` that failed left ``a/b`` behind."""
    if made is None:
        return
    for parent in path.parents:
        if parent == made.parent:
            break
        with contextlib.suppress(OSError):
            parent.rmdir()


def shell_path(path: str | Path) -> str:
    """``path`` as a command pasted into a shell takes it: quoted (``shlex``), and ``./`` before a
    relative one starting with ``-``, which a command would read as an option."""
    import shlex

    text = str(path)
    return shlex.quote(f"./{text}" if text.startswith("-") else text)


def drawn_aside(draw: Callable[[Path], object], out: Path) -> bytes | None:
    """What ``draw(path)`` writes for the output file ``out``, drawn in a scratch folder and returned
    as bytes (None when it wrote nothing: a picture without matplotlib), for the caller to write with
    the files it goes with as one set (``atomic_write_all``): an interrupt or a full disk then leaves
    the old set or the new one. A write error while drawing names ``out``, the file asked for."""
    with scratch("drawn") as aside:
        path = aside / Path(out).name
        try:
            draw(path)
        except OSError as error:
            if error.errno is None or not str(error.filename or "").startswith(str(aside)):
                raise
            raise OSError(error.errno, error.strerror, str(out)) from None
        return path.read_bytes() if path.exists() else None


def user_cache_directory() -> Path:
    """rnnkit's cache (prepared corpora, the autotuner's choices): ``$RNNKIT_CACHE`` (also read as
    ``$RNNKIT_CACHE_DIR``), else ``$XDG_CACHE_HOME/rnnkit``, else ``~/.cache/rnnkit``. A relative
    ``XDG_CACHE_HOME`` is ignored, as the XDG Base Directory Specification says."""
    root = os.environ.get("RNNKIT_CACHE") or os.environ.get("RNNKIT_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME", "")
    return Path(base if os.path.isabs(base) else Path.home() / ".cache") / "rnnkit"


def scratch_directory(kind: str, beside: Path | None = None) -> Path:
    """A new temporary directory ``rnnkit-KIND-PID-XXXX`` for this process's scratch files (the
    caller removes it), in the system's temporary folder, or hidden (``.rnnkit-KIND-PID-XXXX``) in
    the folder ``beside``, where files drawn in it can be renamed into place. A process killed
    with -9 cannot remove its own: each new one removes those of processes that no longer exist
    (never one of a process still running)."""
    root, prefix = (Path(tempfile.gettempdir()), f"rnnkit-{kind}-") if beside is None else (Path(beside), f".rnnkit-{kind}-")
    for stale in root.glob(f"{prefix}*-*"):
        pid = stale.name[len(prefix) :].split("-")[0]
        if pid.isdigit() and int(pid) != os.getpid() and not process_alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=root))


@contextmanager
def scratch(kind: str) -> Iterator[Path]:
    """``scratch_directory(kind)``, removed when the block ends (however it ends)."""
    directory = scratch_directory(kind)
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def usable_memory() -> int:
    """The memory this process may use, in bytes (what a model's training and a corpus's longest
    line are measured against): the machine's, or less under an address-space limit (``ulimit -v``,
    as clusters set) or a control group's limit (a container, a batch job), where measuring against
    the machine's let an allocation fail with a traceback instead of the one-line refusal."""
    limits = [os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")]
    with contextlib.suppress(ImportError, OSError, ValueError):
        import resource

        soft = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft != resource.RLIM_INFINITY and soft > 0:
            limits.append(soft)
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):  # cgroup v2, v1
        with contextlib.suppress(OSError, ValueError):
            value = Path(path).read_text().strip()
            if value.isdigit() and 0 < int(value) < limits[0]:
                limits.append(int(value))
    return min(limits)


def process_alive(pid: int) -> bool:
    """Whether the process ``pid`` exists (another user's counts: it cannot be signalled, yet runs)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def write_with(writer: Callable[[Path], None], path: Path, shown: Path | None = None) -> None:
    """``writer(path)``, an I/O failure inside it being an ``OSError`` that names the file
    (``shown``, else ``path``): safetensors reports a full disk as its own error type, and an
    ``OSError`` may come without a file name; the command line shows either as one line."""
    shown = str(shown or path)
    try:
        writer(path)
    except OSError as error:
        if error.filename is None and error.errno is not None:
            raise OSError(error.errno, error.strerror or str(error), shown) from None
        raise
    except Exception as error:
        if type(error).__name__ != "SafetensorError":
            raise
        found = re.search(r"os error (\d+)", str(error))
        code = int(found.group(1)) if found else errno.EIO
        raise OSError(code, os.strerror(code), shown) from None


def _write_new(path: Path, data: bytes) -> None:
    """A new file (never an existing one), flushed to disk."""
    _write_to(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE), data)


def _write_to(fd: int, data: bytes) -> None:
    """``data`` into the open file ``fd``, flushed to disk; ``fd`` is closed."""
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        _fsync(f.fileno())


def json_safe(value):
    """``value`` with every non-finite float replaced by None: JSON has no NaN or Infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def file_digest(path: Path) -> dict:
    """``{"bytes": size, "sha256": hex digest}`` of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def check_weights_file(path: Path) -> dict[str, tuple[int, ...]]:
    """Each tensor's shape in the safetensors file ``path``; a one-line ``CheckpointError`` naming
    ``path`` when it is not a complete safetensors file."""
    return {key: shape for key, (shape, _) in weights_header(path).items()}


def weights_header(path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
    """Each tensor's shape and safetensors dtype ("F32", "I64", "BOOL" ...) in the file ``path``, from
    its header; a one-line ``CheckpointError`` naming ``path`` when it is not a complete safetensors
    file, PermissionError when it cannot be read."""
    with open(path, "rb"):  # unreadable is not damaged: safetensors says "No such file" for both
        pass
    try:
        with safe_open(str(path), framework="pt") as f:
            return {key: (tuple(f.get_slice(key).get_shape()), f.get_slice(key).get_dtype()) for key in f.keys()}
    except Exception as error:  # noqa: BLE001 (any failure to parse is the file's damage)
        raise CheckpointError(f"{path}: damaged or incomplete ({str(error).splitlines()[0] if str(error) else type(error).__name__})") from None


class RunDir:
    def __init__(self, path: str | Path):
        self.path = Path(path)

    def file(self, name: str) -> Path:
        return self.path / name

    def exists(self) -> bool:
        return self.file("config.json").exists()

    # -- JSON and text ---------------------------------------------------------------------------
    def write_json(self, name: str, obj) -> None:
        """Strict JSON (a NaN or an infinity is written null), atomically."""
        text = json.dumps(json_safe(obj), indent=2, ensure_ascii=False, allow_nan=False)
        atomic_write(self.file(name), (text + "\n").encode("utf-8"))

    def read_json(self, name: str):
        """The JSON file ``name`` of the run; FileNotFoundError when missing, DataError naming the
        file when it is not JSON (cut short or edited by hand)."""
        path = self.file(name)
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing; is {self.path} a complete rnnkit run?")
        try:
            return json.loads(path.read_bytes().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: damaged, not a JSON file of rnnkit's ({error})") from None
        except (RecursionError, ValueError):  # nested thousands deep, a number of thousands of digits: not written by rnnkit
            raise DataError(f"{path}: damaged, not a JSON file of rnnkit's (nested too deeply or a number too long)") from None

    def read_vocabulary(self, name: str) -> Vocabulary:
        """A vocabulary written as ``{"tokens": [...]}`` (``vocab.json`` and its kin); DataError naming
        the file when it is damaged."""
        value = self.read_json(name)
        tokens = value.get("tokens") if isinstance(value, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(token, str) for token in tokens):
            raise DataError(f"{self.file(name)}: damaged, no list of tokens under \"tokens\"")
        try:
            return Vocabulary(tokens)
        except ValueError as error:
            raise DataError(f"{self.file(name)}: damaged: {error}") from None

    def read_tokenizer(self, name: str):
        """The tokenizer saved as ``name`` (``tokenizer.json`` and its kin: its ``config()``), ready to
        cut text (a BPE model present); DataError naming the file when it is damaged."""
        from .data.tokenizers import make_tokenizer

        value = self.read_json(name)
        try:
            if not isinstance(value, dict):
                raise TypeError("not a table")
            tokenizer = make_tokenizer(value)
        except (KeyError, TypeError, ValueError, UsageError) as error:  # a missing "kind", an unknown level or setting
            raise DataError(f"{self.file(name)}: damaged, not a tokenizer of rnnkit's ({type(error).__name__}: {str(error)[:80]})") from None
        if not tokenizer.ready():
            raise DataError(f"{self.file(name)}: damaged, its {tokenizer.kind} tokenizer has no trained model")
        return tokenizer

    def write_bytes(self, name: str, data: bytes) -> None:
        atomic_write(self.file(name), data)

    # -- weights -----------------------------------------------------------------------------------
    def save_weights(self, name: str, model: nn.Module) -> None:
        """Weights in safetensors (tied weights stored once), atomically."""
        atomic_write(self.file(f"{name}.safetensors"), lambda tmp: save_model(model, str(tmp)))

    def load_weights(self, name: str, model: nn.Module) -> None:
        """``RUN/<name>.safetensors`` into ``model``; ``CheckpointError`` (one line naming the file)
        when it is damaged, does not fit the model, or holds a NaN or an infinity."""
        load_weights_file(self.file(f"{name}.safetensors"), model, f"is {self.path} a complete rnnkit run?")


def check_weights_fit(path: Path, model: nn.Module) -> dict[str, tuple[tuple[int, ...], str]]:
    """The header of the safetensors file ``path`` (``weights_header``), checked against ``model``'s
    tensors (which may be on the ``meta`` device: built from a config.json without allocating, so
    that a size edited to 100,000 is one line, not an allocation of 160 GB): a one-line
    ``CheckpointError`` when a shape differs or a floating-point weight is stored as integers."""
    header = weights_header(path)
    tensors = model.state_dict()
    wrong = [(name, shape, tuple(tensors[name].shape)) for name, (shape, _) in header.items() if name in tensors and shape != tuple(tensors[name].shape)]
    if wrong:  # a best.safetensors copied from a run of another size
        name, got, wanted = wrong[0]
        raise CheckpointError(f"{path}: {name} has shape {list(got)} but the run's config.json gives {list(wanted)}"
                              f"{f' (and {len(wrong) - 1} more)' if len(wrong) > 1 else ''}: the run's files do not belong together")
    # rnnkit writes a floating-point weight as floating point: integers or booleans there (a file
    # made or edited elsewhere) would be cast on loading, silently
    cast = [name for name, t in tensors.items() if t.is_floating_point() and name in header and not header[name][1].startswith(("F", "BF"))]
    if cast:
        raise CheckpointError(f"{path}: {cast[0]} is stored as {header[cast[0]][1]}, not as floating-point numbers"
                              f"{f' (and {len(cast) - 1} more)' if len(cast) > 1 else ''}: not weights rnnkit wrote")
    return header


def load_weights_file(path: Path, model: nn.Module, missing_hint: str = "") -> None:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing" + (f"; {missing_hint}" if missing_hint else ""))
    check_weights_fit(path, model)  # before any tensor is read
    device = next(model.parameters()).device
    missing, unexpected = load_model(model, path, strict=False, device=str(device))
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not fit the model (missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    bad = sum(int((~torch.isfinite(p)).sum()) for p in model.state_dict().values() if p.is_floating_point())
    if bad:
        total = sum(p.numel() for p in model.state_dict().values())
        raise CheckpointError(f"{path}: {bad} of {total} weights are not finite (NaN or infinity): the training that wrote them diverged")
