"""The compiled loops are built once and then loaded from their content-keyed cache: no build tool is
asked again (whichever ``ninja`` is on PATH), a killed build leaves nothing that blocks the next one,
and a broken cache or a failed build falls back to the torch-op loops with a warning, never a crash.

Most tests stand in for the compiler (``load(compile=...)``) and the import (``compiled._import``);
the subprocess tests use the real library the rest of the suite builds (once, in torch's cache).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from rnnkit.engines import compiled

LIBRARY_TEXT = b"a stand-in for the built library"


@pytest.fixture
def fake_import(monkeypatch):
    """``_import`` that accepts only the stand-in library: anything else is 'corrupt' (ImportError)."""

    def fake(name, library):
        if Path(library).read_bytes() != LIBRARY_TEXT:
            raise ImportError(f"{library}: invalid ELF header")
        return "module"

    monkeypatch.setattr(compiled, "_import", fake)


def fake_compile(calls: list):
    def compile(name, build_dir):
        calls.append(build_dir)
        assert build_dir.is_dir() and not any(build_dir.iterdir()), "builds go into a fresh empty directory"
        library = build_dir / f"{name}.so"
        library.write_bytes(LIBRARY_TEXT)
        return library

    return compile


def test_a_corrupt_real_library_is_an_import_error(tmp_path):
    """What ``load`` relies on to rebuild a damaged cache entry."""
    bad = tmp_path / "rnnkit_fused_loops_bad.so"
    bad.write_bytes(b"\x7fELF truncated")
    with pytest.raises(ImportError):
        compiled._import("rnnkit_fused_loops_bad", bad)


def test_builds_once_then_loads_what_it_built(tmp_path, fake_import, capsys):
    calls = []
    assert compiled.load(tmp_path, compile=fake_compile(calls)) == "module"
    assert len(calls) == 1 and "compiling the fused CPU engine's loops" in capsys.readouterr().err
    assert compiled.load(tmp_path, compile=fake_compile(calls)) == "module"
    assert len(calls) == 1 and capsys.readouterr().err == ""
    assert {p.name for p in tmp_path.iterdir()} == {f"{compiled.extension_name()}.so", "build.lock"}


def test_a_killed_build_neither_blocks_nor_leaves_its_files(tmp_path, fake_import):
    """A builder killed (-9) while holding the lock and with a half-written build directory."""
    script = textwrap.dedent(
        f"""
        import fcntl, os, time
        handle = open({str(tmp_path / 'build.lock')!r}, "a")
        fcntl.flock(handle, fcntl.LOCK_EX)
        os.makedirs({str(tmp_path / 'build-killed')!r})
        open({str(tmp_path / 'build-killed' / 'fused_loops.o')!r}, "w").write("half")
        print("building", flush=True)
        time.sleep(120)
        """
    )
    builder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert builder.stdout.readline().strip() == "building"
    finally:
        os.kill(builder.pid, signal.SIGKILL)
        builder.wait()
    calls = []
    assert compiled.load(tmp_path, compile=fake_compile(calls)) == "module"
    assert len(calls) == 1
    assert not (tmp_path / "build-killed").exists()
    assert not list(tmp_path.glob("build-*"))


def test_a_corrupt_library_is_rebuilt(tmp_path, fake_import):
    (tmp_path / f"{compiled.extension_name()}.so").write_bytes(b"\x7fELF cut short by a full disk")
    calls = []
    assert compiled.load(tmp_path, compile=fake_compile(calls)) == "module"
    assert len(calls) == 1


def test_a_failed_build_falls_back_to_the_torch_op_loops(tmp_path, monkeypatch, fake_import):
    (tmp_path / f"{compiled.extension_name()}.so").write_bytes(b"corrupt")

    def failing(name, build_dir):
        (build_dir / "fused_loops.o").write_text("half")
        raise RuntimeError("Error building extension\ng++: fatal error: killed")

    monkeypatch.setattr(compiled, "cache_directory", lambda name=None: tmp_path)
    monkeypatch.setattr(compiled, "_compile_with_torch", failing)
    monkeypatch.setattr(compiled, "_state", {})
    monkeypatch.delenv("RNNKIT_COMPILED_LOOPS", raising=False)
    with pytest.warns(RuntimeWarning, match="g\\+\\+: fatal error: killed.*torch-op loops"):
        assert compiled.compiled_loops() is None
    assert not list(tmp_path.glob("build-*"))


# -- real library, fresh processes ------------------------------------------------------------------


def fake_ninja(folder: Path, mark: Path) -> str:
    """A folder holding a `ninja` that records its call and fails: to be put first on PATH."""
    folder.mkdir()
    ninja = folder / "ninja"
    ninja.write_text(f"#!/bin/sh\necho \"$@\" >> {mark}\nexit 1\n")
    ninja.chmod(0o755)
    return f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"


def load_in_subprocess(extensions_dir: Path, path: str) -> subprocess.CompletedProcess:
    code = "from rnnkit.engines.compiled import compiled_loops; print(compiled_loops() is not None)"
    env = {**os.environ, "PATH": path, "TORCH_EXTENSIONS_DIR": str(extensions_dir), "RNNKIT_COMPILED_LOOPS": "1"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def real_library() -> Path:
    """The library the suite builds (once) in torch's extension cache."""
    if os.environ.get("RNNKIT_COMPILED_LOOPS", "1") == "0":
        pytest.skip("the compiled CPU loops are switched off (RNNKIT_COMPILED_LOOPS=0)")
    if compiled.compiled_loops() is None:
        pytest.skip("the compiled CPU loops could not be built here")
    library = compiled.cache_directory() / f"{compiled.extension_name()}.so"
    if not library.exists():
        pytest.skip("the compiled loops were loaded from elsewhere")
    return library


def test_a_cached_build_loads_whichever_ninja_is_on_path(tmp_path, real_library):
    """Two fresh processes with two different ninjas first on PATH: neither is asked, nothing is built."""
    name = compiled.extension_name()
    (tmp_path / "ext" / name).mkdir(parents=True)
    shutil.copy2(real_library, tmp_path / "ext" / name / f"{name}.so")
    for which in ("one", "two"):
        mark = tmp_path / f"ninja-{which}-called"
        done = load_in_subprocess(tmp_path / "ext", fake_ninja(tmp_path / f"bin-{which}", mark))
        assert done.stdout.strip() == "True", done.stderr
        assert not mark.exists(), f"ninja {which} was asked: {mark.read_text()}"
        assert "compiling" not in done.stderr


def test_without_a_cached_build_a_broken_ninja_means_the_torch_op_loops(tmp_path, real_library):
    """The same set-up with an empty cache: ninja is needed, fails, and the process carries on."""
    mark = tmp_path / "ninja-called"
    done = load_in_subprocess(tmp_path / "ext", fake_ninja(tmp_path / "bin", mark))
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr
    assert mark.exists()
    assert "could not build the compiled CPU loops" in done.stderr and "Traceback" not in done.stderr
    assert not list((tmp_path / "ext").glob("*/build-*"))


def test_the_avx2_emulation_builds_the_loops_for_avx2(monkeypatch):
    """Under ATEN_CPU_CAPABILITY=avx2 (the issue's emulation of an AVX2 CPU on an AVX-512 one)
    -march=native alone built the packed-FMA kernel for AVX-512 into the emulation; the loops are
    then built without AVX-512, as a separate extension, so the emulation times the AVX2 kernel."""
    native = compiled.build_flags(), compiled.extension_name()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert compiled.build_flags() == [*compiled.FLAGS, "-mno-avx512f"]
    assert compiled.extension_name() != native[1] or "-mno-avx512f" in native[0]
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    assert compiled.build_flags() == compiled.FLAGS
