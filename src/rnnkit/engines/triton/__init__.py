"""GPU kernels in Triton, each checked on the CPU in Triton's interpreter (``TRITON_INTERPRET=1``,
tests/test_triton.py) against the torch-op loops, which are themselves proven equal to the cells:

* ``loops``: the fused engine's time loops as per-step kernels (the ``triton`` engine);
* ``persistent``: one launch per direction for the whole time loop (the ``persistent`` engine);
* ``sampling``: sampling from an LSTM language model in two launches per token (``decoding``).

Nothing here imports Triton until one of these modules is imported, so the package can be named
where Triton is not installed.
"""

PERSISTENT_KINDS = ("rnn", "gru", "gru-simple", "gru-cudnn", "lstm")  # cell kinds with a kernel in persistent.py


def update_config(config: dict, values: dict, what: str) -> None:
    """Change the tile settings ``config`` (a module's ``CONFIG``) to ``values``; benchmarks/gpu.py
    uses this to time alternatives. Raises ValueError naming the unknown keys, changing nothing."""
    unknown = set(values) - set(config)
    if unknown:
        raise ValueError(f"unknown {what} settings {sorted(unknown)}; known: {sorted(config)}")
    config.update(values)
