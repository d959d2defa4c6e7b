"""Collection of the docstring examples (``--doctest-modules`` over ``src/rnnkit``, pyproject.toml).

Every module of the package is imported to find its examples, except those that cannot be
imported here: ``cli/__main__.py`` runs the command line when imported, the Triton kernels need
Triton (tests/test_triton.py runs them in its interpreter), and the modules of an optional extra
need that extra. The suite-wide settings of tests/conftest.py hold for the examples too.
"""

import importlib.util
import os

os.environ["RNNKIT_AUTOTUNE"] = "0"  # engine="auto" takes the fixed order: no timing (tests/conftest.py)

# tests/compile_for_gpu.py: a script for a GPU machine; imported for its (absent) examples, it would
# define the Triton kernels outside the interpreter before tests/test_triton.py asks for it
collect_ignore = ["src/rnnkit/cli/__main__.py", "src/rnnkit/engines/triton", "tests/compile_for_gpu.py"]
for module, paths in {
    "fastapi": ["src/rnnkit/serve/app.py"],
    "onnx": ["src/rnnkit/export/graph.py"],
}.items():
    if importlib.util.find_spec(module) is None:
        collect_ignore += paths
