r"""Frozen contextual features from trained rnnkit language models, for taggers and classifiers:
``rnnkit train tagger|classifier --lm-features RUN[,RUN]`` (TagLM, Peters et al. 2017; Flair's
contextual string embeddings, Akbik et al. 2018).

Each language model reads the sentence the way it read lines in training, and the feature of word
w<i> is its top layer's hidden state a<t> at one position, concatenated over the models
(F = Σ hidden sizes)::

    forward model:   a<t> having read the sentence up to w<i>'s last token   (up to the space after it)
    reversed model:  a<t> having read the sentence from its end down to w<i>'s first token
                     (a model trained with ``rnnkit train lm --reverse``; down to the space before it)

A character model reads the words joined by single spaces (Flair: for the forward model, the state
at the space after the word; for the backward model, at the space before it); a word, white-space or
BPE model reads each word's tokens (the model's own tokenizer cuts each word, so "U.S." may be
several tokens), and the position is that of the word's last token (forward) or first (reversed).
The language model's ``x<1> = 0`` starts the sentence, as in training; a model trained as one stream
with line-break tokens (``--line-breaks token``) reads a line break first, as it saw before each
line. Characters or words the model does not know are its ``<UNK>``.

The models are frozen: loaded from their runs' best weights (safetensors, ``rnnkit.files.RunDir``),
in evaluation mode (no dropout), ``requires_grad`` off and run under ``torch.no_grad``; they are no
submodule of the tagger, so its optimiser, its weight files and its parameter count never see them.
A run trained with these features records the language models' paths and reads them again when it is
tagged, evaluated or resumed: they must stay where they were.

The features of a run's own sentences (training, validation and test) are computed once, in a fixed
order, and kept in memory (``cache_once``): a training epoch and each evaluation then reuse them
instead of running the language models again. The order and batches are the same in every process,
so a resumed run sees the very features the interrupted one saw. Sentences given later (``rnnkit
tag``) are computed per batch, as is everything when the cache would pass ``CACHE_LIMIT_BYTES``.

Errors (``UsageError``, one line naming the option and the run): no run there, a run of another task,
more than two runs, or two runs of which the second is not reversed (give ``FWD,BWD``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from ..data.tokenizers import Tokenizer
from ..data.vocab import EOS, UNK, Vocabulary
from ..errors import DataError, UsageError
from ..files import RunDir, file_digest
from .registry import build_model

NEWLINE = "\n"  # the line-break token of a model trained with --line-breaks token
CACHE_LIMIT_BYTES = 4 << 30  # the features of a run's sentences kept in memory, at most (float32)
CACHE_BATCH = 64  # sentences per pass of the language models while filling the cache


@dataclass
class LanguageModelRun:
    """A trained language-model run: its ``config.json``, model (best weights), vocabulary and tokenizer."""

    path: str
    config: dict
    model: nn.Module
    vocab: Vocabulary
    tokenizer: Tokenizer | None  # None: a run without tokenizer.json (made by hand, as tests do)
    weights_sha256: str = ""  # of its best.safetensors: what a run trained with these features records

    @property
    def reverse(self) -> bool:
        return bool(self.config["data"].get("reverse"))

    @property
    def hidden_size(self) -> int:
        return int(self.config["model"]["hidden_size"])


def read_run_config(path: str, option: str, wanted: str) -> tuple[RunDir, dict]:
    """(the run at ``path``, its config.json) for ``option``: a one-line ``UsageError`` when there is no
    run there (``wanted`` says what the option takes) or its config.json lacks a section."""
    run = RunDir(path)
    if not run.file("config.json").exists():
        raise UsageError(f"{option} {path}: not an rnnkit run directory (no config.json); give the run directory of {wanted}")
    config = run.read_json("config.json")
    # {} was "a None run"; said as rnnkit.runs.run_config says it (models may not import runs: it imports this module)
    missing = [name for name in ("task", "model", "data") if not isinstance(config, dict) or not isinstance(config.get(name), str if name == "task" else dict)]
    if missing:
        raise UsageError(f"{run.file('config.json')}: damaged (no {', '.join(repr(m) for m in missing)} section); is {path} a complete rnnkit run?")
    return run, config


READ_AGAIN = {"--lm-features": "; a run trained with --lm-features reads them again from where they were then"}  # not --init-from: copied once


def read_language_model(path: str, option: str) -> LanguageModelRun:
    """The language-model run at ``path`` with its best weights; a one-line ``UsageError`` naming
    ``option`` and the path when there is no run there or it is another task's."""
    run, config = read_run_config(path, option, "a trained language model (rnnkit train lm)" + READ_AGAIN.get(option, ""))
    if config["task"] != "lm":
        raise UsageError(f"{option} {path}: a {config['task']} run; {option} takes language-model (lm) runs")
    model = build_model("lm", {k: v for k, v in config["model"].items() if k != "kind"})
    run.load_weights("best", model)  # checked against its checkpoints first, by rnnkit.runs.check_pretrained_runs
    tokenizer = run.read_tokenizer("tokenizer.json") if run.file("tokenizer.json").exists() else None
    vocab = run.read_vocabulary("vocab.json")
    data = config.get("data") or {}
    why = tokenizer.disagreement(data.get("level"), data.get("lowercase")) if tokenizer is not None else None  # as the verbs check (runs.check_sizes)
    if why:
        raise DataError(f"{option} {path}: tokenizer.json: {why}: its files do not belong together")
    if len(vocab) != config["model"].get("vocab_size", len(vocab)):
        raise DataError(f"{option} {path}: vocab.json holds {len(vocab):,} tokens, but the weights were trained with {config['model']['vocab_size']:,}: "
                        f"its files do not belong together")
    weights = file_digest(run.file("best.safetensors"))["sha256"]
    return LanguageModelRun(str(path), config, model, vocab, tokenizer, weights)


class LMFeatures:
    """The frozen features of one or two language models (see the module docstring).

    ``LMFeatures.read("FWD,BWD")``; ``size`` is F; ``features(sentences, device)`` gives (T, B, F)
    for B sentences of at most T words (zero on padding), ``encode`` the models' inputs alone.
    """

    def __init__(self, runs: list[LanguageModelRun]):
        self.runs = runs
        self.device = torch.device("cpu")
        self.cache: dict[tuple[str, ...], Tensor] = {}  # a sentence's words -> (len, F) on the CPU
        self.cache_filled = False
        for run in runs:
            run.model.eval().requires_grad_(False)  # frozen: no dropout, no gradient

    @classmethod
    def read(cls, spec: str, option: str = "--lm-features") -> "LMFeatures":
        """The runs of ``spec`` ("RUN" or "FWD,BWD"): a forward and a reversed pair, or one of either."""
        paths = [part.strip() for part in str(spec).split(",") if part.strip()]
        if not 1 <= len(paths) <= 2:
            raise UsageError(f"{option} {spec}: give one language-model run, or a forward and a reversed one (FWD,BWD)")
        runs = [read_language_model(path, option) for path in paths]
        for run in runs:
            if run.tokenizer is None:
                raise UsageError(f"{option} {run.path}: no tokenizer.json; is it a complete rnnkit run?")
        if len(runs) == 2 and (runs[0].reverse or not runs[1].reverse):
            raise UsageError(f"{option} {spec}: give a forward run, then a reversed one (rnnkit train lm --reverse); these are "
                             + " and ".join("reversed" if run.reverse else "forward" for run in runs))  # fmt: skip
        return cls(runs)

    @property
    def size(self) -> int:
        """F: the sum of the models' hidden sizes."""
        return sum(run.hidden_size for run in self.runs)

    @property
    def spec(self) -> str:
        """The runs' absolute paths, comma-separated: what a run trained with them records."""
        return ",".join(str(Path(run.path).resolve()) for run in self.runs)

    def record(self) -> dict:
        """What ``config.json`` keeps (``split.lm_features``)."""
        return {
            "runs": [str(Path(run.path).resolve()) for run in self.runs], "weights": "best", "size": self.size,
            "models": [{"level": run.tokenizer.kind, "reverse": run.reverse, "hidden_size": run.hidden_size,
                        "weights_sha256": run.weights_sha256} for run in self.runs],
        }  # fmt: skip

    def describe(self) -> str:
        models = ", ".join(f"{run.path} ({run.tokenizer.kind}, {'reversed' if run.reverse else 'forward'}, {run.hidden_size})" for run in self.runs)
        return f"language-model features: {models}; {self.size} per word, frozen"

    # -- inputs ----------------------------------------------------------------------------------------
    @staticmethod
    def line(run: LanguageModelRun, words: list[str]) -> tuple[list[int], list[int]]:
        """The ids y<1..S> that ``run``'s model reads for ``words`` (its terminator last), and for
        each word the step t (0-based) of a<t> that is its feature (see the module docstring)."""
        start = [NEWLINE] if run.config["data"].get("line_breaks") == "token" else []
        end = [NEWLINE] if start else [EOS]
        separator = run.tokenizer.tokenize(" ") if run.tokenizer.kind == "char" else []  # characters: words joined by spaces
        body: list[str] = []
        spans = []  # (first, last) token of each word in ``body``
        for i, word in enumerate(words):
            body += separator if i else []
            pieces = run.tokenizer.tokenize(word) or [UNK]
            spans.append((len(body), len(body) + len(pieces) - 1))
            body += pieces
        n, s = len(body), len(start)
        if run.reverse:  # read from the end: body index j is read at s + n - 1 - j; a<t> after it is one later
            tokens, steps = start + body[::-1] + end, [s + n - first for first, _ in spans]
        else:
            tokens, steps = start + body + end, [s + last + 1 for _, last in spans]
        ids = [run.vocab.ids.get(t, run.vocab.unk_id) for t in tokens]  # a word "<EOS>" in the text is <UNK>
        if end == [EOS]:
            ids[-1] = run.vocab.eos_id  # the line's own end
        return ids, steps

    def encode(self, sentences: list[list[str]]) -> list[tuple[Tensor, Tensor, Tensor]]:
        """For each model: ids (S, B) padded with ``<PAD>``, lengths (B,) and the feature steps (T, B)."""
        T = max(len(words) for words in sentences)
        inputs = []
        for run in self.runs:
            lines = [self.line(run, words) for words in sentences]
            ids = torch.zeros(max(len(line) for line, _ in lines), len(sentences), dtype=torch.long)  # (S, B)
            steps = torch.zeros(T, len(sentences), dtype=torch.long)  # (T, B)
            for b, (line, at) in enumerate(lines):
                ids[: len(line), b] = torch.tensor(line)
                steps[: len(at), b] = torch.tensor(at, dtype=torch.long)
            inputs.append((ids, torch.tensor([len(line) for line, _ in lines]), steps))
        return inputs

    # -- features --------------------------------------------------------------------------------------
    def to(self, device) -> "LMFeatures":
        device = torch.device(device)
        if device != self.device:
            for run in self.runs:
                run.model.to(device)
            self.device = device
        return self

    @torch.no_grad()
    def features(self, sentences: list[list[str]], device="cpu") -> Tensor:
        """(T, B, F) for B sentences of words (T: the longest), on ``device``; zero where a sentence
        has no word. From the cache when it holds every sentence of the batch; otherwise one pass of
        each model over the batch. No gradient reaches the models."""
        cached = [self.cache.get(tuple(words)) for words in sentences]
        if self.cache and all(c is not None for c in cached):
            return nn.utils.rnn.pad_sequence(cached).to(device)  # (T, B, F), zero past each sentence's end
        return self.compute(sentences, device)

    def cache_once(self, sentences: Callable[[], Iterable[list[str]]], limit: int | None = None, progress: bool = True) -> None:
        """Fill the cache with the features of ``sentences()`` (called only the first time), in
        batches of ``CACHE_BATCH`` sentences of similar length, in a fixed order, with a progress bar;
        a one-line note on stderr instead when they would take more than ``limit`` bytes
        (default ``CACHE_LIMIT_BYTES``). ``progress`` False: no bar. Later calls do nothing."""
        if self.cache_filled:
            return
        self.cache_filled = True
        unique = sorted({tuple(words) for words in sentences() if words}, key=lambda words: (len(words), words))
        size = sum(len(words) for words in unique) * self.size * 4  # bytes, float32
        limit = CACHE_LIMIT_BYTES if limit is None else limit
        if size > limit:
            print(f"language-model features: {size / 2**30:.1f} GiB for this run's sentences, over the cache's {limit / 2**30:.1f} GiB; computed per batch", file=sys.stderr, flush=True)
            return
        for start in tqdm(range(0, len(unique), CACHE_BATCH), desc="language-model features", unit="batch", file=sys.stderr, leave=False, disable=None if progress else True):
            chunk = unique[start : start + CACHE_BATCH]
            values = self.compute([list(words) for words in chunk], self.device).cpu()  # (T, B, F)
            for b, words in enumerate(chunk):
                self.cache[words] = values[: len(words), b].clone()  # (len, F): its own storage, not the batch's

    @torch.no_grad()
    def compute(self, sentences: list[list[str]], device="cpu") -> Tensor:
        """``features`` without the cache: one pass of each model over the batch."""
        self.to(device)
        T = max(len(words) for words in sentences)
        mask = torch.tensor([[t < len(words) for words in sentences] for t in range(T)], device=self.device)[..., None]  # (T, B, 1)
        parts = []
        for run, (ids, lengths, steps) in zip(self.runs, self.encode(sentences)):
            x = run.model.inputs(ids.to(self.device))  # (S, B, E): x<1> = 0, x<t> = e(y<t-1>)
            a, _ = run.model.recurrent(x, lengths=lengths)  # (S, B, n_a): the top layer
            index = steps.to(self.device)[..., None].expand(-1, -1, a.shape[-1])  # (T, B, n_a)
            parts.append(a.gather(0, index) * mask)  # (T, B, n_a)
        return torch.cat(parts, dim=-1)  # (T, B, F)


# -- for the tasks that take --lm-features (tagger, classifier) -----------------------------------------
def lm_features_size(features: LMFeatures | None) -> dict:
    """The model setting that makes room for the features: ``{"lm_features_size": F}``, or {} without."""
    return {} if features is None else {"lm_features_size": features.size}


def check_recorded(features: LMFeatures | None, config: dict) -> None:
    """For a run trained with ``--lm-features`` (tag, classify, eval, resume): the language models
    read again must be the ones it was trained with, by hidden size and by the SHA-256 of their best
    weights (runs trained before that was recorded: by size alone). Raises a one-line ``UsageError``
    naming the language model's run when one was retrained or replaced at its path."""
    recorded = (config.get("split") or {}).get("lm_features")
    if features is None or not recorded:
        return
    for run, model in zip(features.runs, recorded.get("models", [])):
        if run.hidden_size != model.get("hidden_size"):
            changed = f"its hidden size is {run.hidden_size}, the run was trained with {model.get('hidden_size')}"
        elif model.get("weights_sha256", run.weights_sha256) != run.weights_sha256:
            changed = "its best weights changed since the run was trained"
        else:
            continue
        raise UsageError(f"--lm-features {run.path}: not the language model this run was trained with ({changed}); put that one back, or train this run again")


def record_lm_features(features: LMFeatures | None, data) -> dict:
    """At the start of a run: ``data.lm_features`` set to the runs' absolute paths (so that a run
    tagged or resumed from another directory finds them), the features described on stderr, and
    what ``config.json`` keeps under ``split`` ({} without features)."""
    if features is None:
        return {}
    data.lm_features = features.spec
    print(features.describe(), file=sys.stderr, flush=True)
    return {"lm_features": features.record()}
