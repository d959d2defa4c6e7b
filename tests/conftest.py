"""Suite-wide settings: no test depends on timing.

``engine="auto"`` measures engines on first use (``rnnkit.engines.autotune``); timing differs from
run to run, so every test, and every process a test starts, gets the fixed order instead. Tests of
the autotuner opt in with ``monkeypatch.setenv("RNNKIT_AUTOTUNE", "1")`` and a private
``RNNKIT_CACHE_DIR``.
"""

import os

os.environ["RNNKIT_AUTOTUNE"] = "0"
