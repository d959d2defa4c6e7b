"""The one model interface: what every registered model answers, so that the tasks, decoding,
analysis and export never ask which model they hold (makemore's ``forward(idx, targets=None) ->
(logits, loss)`` is the example).

* Every model: ``model(inputs, lengths=None, ...) -> ModelOutput``. ``inputs`` is what the model
  reads, (T, B) token ids or (T, B, 88) piano rolls or the tagger's word batch; a model may take
  further keywords of its own (the state to continue from, the target of a teacher-forced decoder).
* Every model that generates one step at a time (language model, piano-roll model, the seq2seq
  decoder): ``start(...) -> state`` (a language model's takes the number of rows, the decoder's its
  source) and ``step(previous, state) -> ModelOutput`` whose logits are (B, V) for the next step
  given the previous one (None at the first step, where x<1> = 0). ``rnnkit.decoding`` runs any of
  them through these two calls.

``tests/test_models.py`` builds every model in ``MODELS`` and checks both contracts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from torch import Tensor


@dataclass
class ModelOutput:
    """What a model's ``forward`` and ``step`` return, the same type for every model.

    A dataclass rather than a tuple: callers take a field by its name, so a field that only some
    models fill (the penalty, the attention) costs the others nothing and no caller unpacks a
    tuple whose length depends on the model.

    Attributes:
        logits: the scores before the softmax (or sigmoid): (T, B, V) per step for a sequence
            model, (T, B, K) the tagger's emission scores, (B, C) a classifier's per sequence,
            (B, V) from ``step``.
        state: what to continue from: the final ``RecurrentState`` (``rnnkit.cells``) of the
            recurrent stack, or the decoder's state from ``step``; None when there is nothing to
            continue (a teacher-forced decoder).
        penalty: a scalar to add to the loss per counted step, from the model's own regularisers
            (the language model's AR + TAR while training); None when there is none.
        attention: the attention weights of a step, (B, S) over the source; None without attention.
        features: the vectors the output layer reads, (T, B, F), where a model gives them (the
            language model's, for its continuous cache: ``rnnkit.decoding.cache``); else None.
    """

    logits: Tensor
    state: Any = None
    penalty: Tensor | None = None
    attention: Tensor | None = None
    features: Tensor | None = None


@runtime_checkable
class Model(Protocol):
    """A registered model (``models.registry``): rebuilt from ``kind`` and ``config()``."""

    kind: str

    def config(self) -> dict: ...

    def __call__(self, inputs: Any, lengths: Tensor | None = None, **options: Any) -> ModelOutput: ...


@runtime_checkable
class StepModel(Protocol):
    """A model that generates one step at a time (see the module docstring)."""

    def start(self, *args: Any, **kwargs: Any) -> Any: ...

    def step(self, previous: Tensor | None, state: Any) -> ModelOutput: ...
