"""Suite-wide settings: no test depends on timing.

``engine="auto"`` measures engines on first use (``rnnkit.engines.autotune``); timing differs from
run to run, so every test, and every process a test starts, gets the fixed order instead. Tests of
the autotuner opt in with ``monkeypatch.setenv("RNNKIT_AUTOTUNE", "1")`` and a private
``RNNKIT_CACHE``.
"""

import os

os.environ["RNNKIT_AUTOTUNE"] = "0"

import importlib.util  # noqa: E402
import sys  # noqa: E402

import torch  # noqa: E402

if importlib.util.find_spec("triton") is not None and not torch.cuda.is_available() and "triton" not in sys.modules:
    # Triton decides at its first import whether its own library functions run in the interpreter.
    # A test module may import it indirectly before test_triton sets TRITON_INTERPRET=1 (an
    # optimizer's first use imports torch._dynamo, which imports Triton), after which the
    # interpreted kernels fail; so it is imported here in interpreter mode and the variable restored,
    # and the other modules still see a CPU on which the triton engine cannot run.
    _before = os.environ.get("TRITON_INTERPRET")
    os.environ["TRITON_INTERPRET"] = "1"
    import triton  # noqa: E402, F401

    if _before is None:
        del os.environ["TRITON_INTERPRET"]
    else:
        os.environ["TRITON_INTERPRET"] = _before


def pytest_sessionstart(session):
    """The machine the suite ran on, first in every log (CI's included, whose ``-q`` hides pytest's
    own header): float32 results and the engines' speed differ by CPU (issue 15), so a report says
    which one it came from."""
    from rnnkit.engines import autotune
    from rnnkit.engines.compiled import cpu_vendor, product_routine

    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:  # -p no:terminal
        return
    isa = torch.backends.cpu.get_cpu_capability()
    reporter.write_line(f"rnnkit: CPU {autotune.cpu_model()} ({cpu_vendor()}), torch CPU capability {isa}, {torch.get_num_threads()} threads, product routine {product_routine()}")
