"""The language-model task: text files -> tokens -> ids -> batches, the summed loss, evaluation,
samples during training, and the artifacts a run keeps so that scoring and sampling later tokenize
exactly as training did.

Data layout. Each non-blank line of the input files is a sentence (or a name, or a line of a play):
with ``line_breaks="eos"`` every line ends with ``<EOS>``; with ``line_breaks="token"`` the file
is one stream and a line break is a token of its own (``\\n``), blank lines included. With only a
training file, valid and test lines are split off it deterministically (``split`` fractions,
``split_seed``, by line index: ``rnnkit.data.corpus``) and the split is recorded in the run's config.

The text is never held in memory: ``prepare`` tokenizes the files once into a prepared corpus
(token ids on disk, cached for big files: ``rnnkit.data.corpus``), and training, evaluation and the
novelty check of samples read from it.

Reversed (``reverse``): the backward language model of TagLM and Flair reads each line from its last
token to its first, ``<EOS>`` still last (with ``--batching stream``, the whole stream from its end).
The prepared corpus is the forward one; batches read it reversed (``ReversedSplit``). A reversed
run's ``score`` reads the typed text's tokens reversed and lists them in that order, each with its
probability given the tokens after it; ``sample`` draws a line from its end and prints it in reading
order, a ``--prime`` being the line's end; ``eval`` and ``inspect`` read reversed as training did.
"""

from __future__ import annotations

import hashlib
import math
import sys

import numpy as np
import torch
from torch import Tensor

from ..cells import map_state, state_fields, state_from_fields
from ..data.batches import StreamBatches, TokenBatch, check_sequence_lengths
from ..data.corpus import CorpusSentenceBatches, CorpusSplit, SeenLines, encode_file, is_prepared, prepare_corpus
from ..data.textio import LINE_BREAK, DataError, open_bytes, split_lines
from ..data.tokenizers import Tokenizer, note_if_presegmented
from ..data.vocab import Vocabulary
from ..decoding import SamplingOptions, sample
from ..decoding.cache import NEEDS_STREAM as CACHE_NEEDS_STREAM, WINDOWS as CACHE_WINDOWS, ContinuousCache, cached_log_probs, grid_edges as cache_grid_edges, model_loss as cache_model_loss, tune as tune_continuous_cache
from ..models.losses import token_loss
from ..metrics import perplexity, shown_perplexity
from ..files import RunDir, scratch, shell_path
from ..distributed import SINGLE, barrier, setup
from ..errors import UsageError
from .base import TaskBase, tokens_to_inspect, typed_tokens
from .language_model_spec import LMDataConfig, LanguageModelSpec, MODEL_DEFAULTS  # noqa: F401  (its settings, imported from here too)

NEWLINE = "\n"


class ReversedIds:
    """The token ids of a split read from the end: ``ids[a:b]`` of the reversed stream is the
    forward ``ids[n-b:n-a]`` backwards, read lazily (the prepared corpus stays on disk)."""

    def __init__(self, ids):
        self.forward = ids

    def __len__(self) -> int:
        return len(self.forward)

    def __getitem__(self, index: slice) -> np.ndarray:
        start, stop, _ = index.indices(len(self.forward))
        n = len(self.forward)
        return np.asarray(self.forward[n - max(stop, start) : n - start])[::-1]


class ReversedSplit:
    """A prepared split whose lines read backwards: each sentence's tokens reversed, its terminator
    (``<EOS>``) kept last; ``ids`` is the whole stream reversed (``ReversedIds``). The rest of a
    ``CorpusSplit``'s interface (``len``, ``offsets``, ``lengths``) is the forward split's."""

    def __init__(self, split: CorpusSplit):
        self.forward, self.offsets, self.ids = split, split.offsets, ReversedIds(split.ids)

    def __len__(self) -> int:
        return len(self.forward)

    @property
    def num_tokens(self) -> int:
        return self.forward.num_tokens

    def sentence(self, i: int) -> np.ndarray:
        ids = self.forward.sentence(i)  # (length,) with its terminator last
        return np.concatenate([ids[:-1][::-1], ids[-1:]])

    def lengths(self, lines: np.ndarray) -> np.ndarray:
        return self.forward.lengths(lines)


def _token_key(tokens: list[str]) -> bytes:
    return hashlib.sha1("\x1f".join(tokens).encode("utf-8")).digest()[:8]


def check_stream_tokens(tokens: int, streams: int, where: str) -> None:
    """A split read as ``streams`` parallel streams needs two tokens in each (an input and its
    target): a one-line test split holding a blank line (one line-break token) could not be
    evaluated, and the run failed after all its training, at every resume."""
    if tokens < 2 * streams:
        hint = ("; a smaller --batch-size, or more text" if streams > 1
                else "; a held-out split of more lines (--split), or --valid and --test files")
        raise DataError(f"{where}: {tokens} token(s), too few for {streams} parallel stream(s) of at least 2{hint}")


def say_if_presegmented(data: LMDataConfig) -> None:
    """A note for each data file whose first lines were segmented into subwords by another
    tool (SentencePiece's "▁", subword-nmt's "@@") and the level would cut them again: samples and
    scores then come out in neither the file's pieces nor its words (``tokenizers.presegmented``)."""
    if data.level not in ("word", "bpe"):
        return
    for path in [*data.train, data.valid, data.test]:  # every file: one segmented file among plain ones is cut too
        if not path or str(path) == "-":
            continue
        try:
            with open_bytes(path) as handle:  # the first megabyte: a file of one long line is not read whole for a note
                first = handle.read(1 << 20).decode("utf-8", "ignore").splitlines()
        except (DataError, IsADirectoryError):
            continue  # the corpus's own reading names what is wrong with the file
        note_if_presegmented(str(path), first, data.level)


class LanguageModelTask(LanguageModelSpec, TaskBase):
    """The work of the task that ``LanguageModelSpec`` declares (its settings and ``rnnkit train`` help)."""

    vocabularies = {"vocab.json": "vocab"}
    tokenizers = {"tokenizer.json": "tokenizer"}

    def __init__(self, data: LMDataConfig, tokenizer: Tokenizer, vocab: Vocabulary, splits: dict[str, CorpusSplit] | None = None, seen: SeenLines | set | None = None, seed: int = 0):
        self.data = data
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.splits = splits or {}  # split name -> a prepared corpus's split (ids on disk)
        self.seen = seen if seen is not None else SeenLines(np.zeros(0, np.uint64))  # the training lines, for "novel or seen"
        self.seed = seed  # the order of sentence batches
        self.carried = None  # the recurrent state carried across stream chunks (detached)
        if "train" in self.splits:
            self._train = self._batches("train", True)

    # -- configuration -------------------------------------------------------------------------------
    def model_config(self, values: dict) -> dict:
        """The language model's constructor arguments: defaults, then ``values``."""
        return self._model_config({"vocab_size": len(self.vocab)}, values)

    def run_name_detail(self, model_config: dict) -> str:
        return f"{self.data.level}-{model_config['cell']}"

    # -- building --------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: LMDataConfig, seed: int = 0) -> tuple["LanguageModelTask", dict]:
        """The prepared corpus of the data (made once, or reused from the cache: split, tokenizer
        fitted, vocabulary counted, ids on disk; ``rnnkit.data.corpus``). ``data.train = [DIR]``
        with a directory from ``rnnkit prepare`` trains from it, with its settings. Returns the task
        and a record of the split for the run's config."""
        if not (len(data.train) == 1 and is_prepared(data.train[0])):
            data.check()
            say_if_presegmented(data)
        shard = setup()  # under torchrun rank 0 prepares (or checks) a cached corpus before the others open it
        if not shard.main:
            barrier(shard)
        corpus = prepare_corpus(data)
        if shard.main:
            barrier(shard)
        if len(data.train) == 1 and is_prepared(data.train[0]):  # the store's settings are the run's
            for key, value in corpus.meta["settings"].items():
                setattr(data, key, tuple(value) if key == "split" else value)
            data.check()
        for name, split in corpus.splits.items():
            where = ", ".join(map(str, data.train)) if name == "train" or not getattr(data, name, None) else str(getattr(data, name))
            if data.batching == "sentences":  # each line one sequence: a line of millions of tokens is refused with its figure
                check_line_lengths(split, f"{where} ({name} split)")
            elif name == "train" or len(split.ids):  # streams: checked here, before training, not at the test after it (a run
                # that could never finish); an empty held-out split (--split 0 0) is no split, as with sentences: no validation
                check_stream_tokens(len(split.ids), data.batch_size if name == "train" else 1, f"{where} ({name} split)")
        record = {**corpus.record(data), "seen_lines": len(corpus.seen)}  # checked by load: a seen.u64 cut to whole keys reads without a word
        lines = record.get("lines", {}).get("train", 0)
        if len(corpus.seen) == 1 and lines > 1 and data.line_breaks == "eos":  # said, not refused: a smoke test may mean it
            print(f"rnnkit: note: {', '.join(map(str, data.train))}: all {lines:,} training lines are the same line; the model learns "
                  "one sentence repeated, and every sample that is it is marked seen", file=sys.stderr, flush=True)  # fmt: skip
        return cls(data, corpus.tokenizer, corpus.vocab, corpus.splits, corpus.seen, seed), record

    def save(self, run: RunDir) -> None:
        super().save(run)
        self.seen.save(run.file("seen.u64"))

    def detach_from_files(self) -> None:
        if isinstance(self.seen, SeenLines):  # memory-mapped seen.u64: a copy over the run cut it short under a server (SIGBUS)
            self.seen = self.seen.in_memory()

    @classmethod
    def load(cls, run: RunDir, data: LMDataConfig) -> "LanguageModelTask":
        """The task as a trained run needs it for scoring and sampling (no data files read)."""
        if run.file("seen.u64").exists():
            seen = SeenLines.open(run.file("seen.u64"))
            split = (run.read_json("config.json").get("split") or {}) if run.file("config.json").exists() else {}
            lines, keys = split.get("lines", {}).get("train"), split.get("seen_lines")  # keys: runs before it was recorded have none
            if not len(seen) and isinstance(lines, int) and lines > 0:  # emptied (a power cut, a copy cut short): every sample "novel"
                raise DataError(f"{run.file('seen.u64')}: damaged (empty, for {lines:,} training lines); is {run.path} a complete rnnkit run?")
            if isinstance(keys, int) and len(seen) != keys:  # cut to whole keys: seen lines said "novel"
                raise DataError(f"{run.file('seen.u64')}: damaged ({len(seen):,} distinct training lines, the run recorded {keys:,}); "
                                f"is {run.path} a complete rnnkit run? (rnnkit train lm --resume --run {shell_path(run.path)} writes it again)")
        elif run.file("seen.bin").exists():  # a run saved before prepared corpora: 8-byte keys of the lines' token strings
            raw = run.file("seen.bin").read_bytes()
            seen = {raw[i : i + 8] for i in range(0, len(raw), 8)}
        else:  # without it every sample would be marked novel
            raise DataError(f"{run.file('seen.u64')}: missing; is {run.path} a complete rnnkit run?")
        return cls(data, **cls.read_artifacts(run), seen=seen)

    def is_seen(self, ids: list[int], typed: int = 0) -> bool:
        """Whether ``ids`` (up to the first ``<EOS>``; ``<PAD>`` skipped) are a line of the training data;
        with line-break tokens, whether every line the sample completes is one (a sample runs over
        lines there, and a line is kept without its break: the whole was never a line, so every
        sample, a verbatim copy too, was "novel"). A sample that completes no line is judged whole.
        ``typed``: how many of the first ids are the prime: a line it completes is the user's, not
        the model's, and is not judged."""
        newline = self.vocab.ids.get(NEWLINE) if self.data.line_breaks == "token" else None
        if newline is None:
            return self._is_line(ids)
        lines, line = [], []
        for end, i in enumerate(ids, start=1):
            if i == newline:
                lines.append(line if end > typed else [])
                line = []
            else:
                line.append(i)
        complete = [line for line in lines if line]
        return all(self._is_line(line) for line in complete) if complete else self._is_line(line)

    def _is_line(self, ids: list[int]) -> bool:
        tokens = self.vocab.decode(ids)
        if isinstance(self.seen, set):
            return _token_key(tokens) in self.seen
        return [self.vocab.ids.get(t, self.vocab.unk_id) for t in tokens] in self.seen

    # -- encoding ----------------------------------------------------------------------------------------
    def encode_line(self, line: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.tokenize(line), eos=self.data.line_breaks == "eos")

    def encode_stream(self, lines: list[str]) -> list[int]:
        """The ids of ``lines`` one line at a time: the reference that a prepared split's ids equal."""
        ids: list[int] = []
        for line in lines:
            ids += self.encode_line(line)
            if self.data.line_breaks == "token":
                ids.append(self.vocab.ids.get(NEWLINE, self.vocab.unk_id))
        return ids

    def batches_of(self, split: CorpusSplit, shuffle: bool):
        """Batches read from a prepared split: stream chunks or padded sentences."""
        corpus_split = ReversedSplit(split) if self.data.reverse else split
        if self.data.batching == "stream":
            ids = corpus_split.ids
            if shuffle:
                return StreamBatches(ids, self.data.batch_size, self.data.bptt)
            # evaluation: fewer, longer columns (state carried across chunks, as in training)
            return StreamBatches(ids, max(1, min(self.data.eval_batch_size or 10, len(ids) // 2)), max(self.data.bptt, 256))
        return CorpusSentenceBatches(corpus_split, self.data.batch_size if shuffle else self.data.eval_batch_size or 64, seed=self.seed, shuffle=shuffle, pad_id=self.vocab.pad_id)

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.detokenize(self.vocab.decode(ids))

    # -- the trainer's Task protocol ----------------------------------------------------------------------
    def batches_per_epoch(self) -> int:
        return len(self._train)

    def start_epoch(self, epoch: int) -> None:
        self.carried = None

    def train_batches(self, epoch: int, start: int, shard=SINGLE):
        return self._train.iterate(epoch, start, shard)

    def loss(self, model, batch: TokenBatch, device):
        """The summed token loss of a batch and its token count. With the model's ``ar_alpha`` or
        ``tar_beta`` (training only), AR + TAR is added count times, so that the trainer's mean
        over tokens is the mean token loss + AR + TAR, as in AWD-LSTM."""
        batch = batch.to(device)
        out = model(batch.tokens, lengths=batch.lengths, state=self.carried, previous=batch.previous)  # logits (T, B, V)
        if self.data.batching == "stream":  # carry the state into the next chunk, without its history
            self.carried = map_state(Tensor.detach, out.state)
        total, count = token_loss(out.logits, batch.tokens, self.vocab.pad_id)
        if out.penalty is not None:  # the model's AR + TAR, while training
            total = total + count * out.penalty
        return total, count

    @torch.no_grad()
    def evaluate_examples(self, model, split: CorpusSplit, device, cache: ContinuousCache | None = None) -> dict:
        """Loss per token (nats) over a prepared split, perplexity, and the number of tokens (the
        state carried across stream chunks, as in training; every token scored, the few after the
        last column too: ``StreamBatches.tail``). With ``cache`` (``rnnkit.decoding.cache``),
        the text is read as one column in order and scored with the continuous cache; the model's own
        loss and perplexity over that same reading are in ``model_loss``, ``model_perplexity``."""
        if cache is not None:
            chunks = list(self.cache_chunks(model, split, device))
            loss, alone = -float(cached_log_probs(chunks, cache).mean()), cache_model_loss(chunks)
            return {**self._loss_figures(loss, sum(len(y) for _, y, _ in chunks)), "cache": cache.as_dict(),
                    "model_loss": alone, "model_perplexity": perplexity(alone)}  # fmt: skip
        model.eval()
        batches = self.batches_of(split, shuffle=False)
        total, count, state = 0.0, 0, None
        for batch in batches.iterate(0):
            batch = batch.to(device)
            out = model(batch.tokens, lengths=batch.lengths, state=state if self.data.batching == "stream" else None, previous=batch.previous)
            state = out.state
            loss_sum, n = token_loss(out.logits, batch.tokens, self.vocab.pad_id)
            total += float(loss_sum)
            count += n
        tail = batches.tail() if self.data.batching == "stream" else None
        if tail is not None:  # the few ids after the last column, read on from its final state
            tail = tail.to(device)
            out = model(tail.tokens, state=map_state(lambda t: t[:, -1:], state), previous=tail.previous)  # state (L, B, n_a) -> (L, 1, n_a)
            loss_sum, n = token_loss(out.logits, tail.tokens, self.vocab.pad_id)
            total += float(loss_sum)
            count += n
        return self._loss_figures(total / max(count, 1), count)

    @staticmethod
    def _loss_figures(loss: float, count: int) -> dict:
        return {"loss": loss, "perplexity": perplexity(loss), "count": count}

    @property
    def reads_one_stream(self) -> bool:
        """Whether the model read its text as one stream (``batching="stream"``), its state carried
        from line to line: what the continuous cache needs."""
        return self.data.batching == "stream"

    @torch.no_grad()
    def cache_chunks(self, model, split: CorpusSplit, device):
        """The chunks ``rnnkit.decoding.cache`` reads: the split as one column in reading order (the
        state carried), each chunk's (features h<t> (T, F), targets y<t> (T,), log p_model(y<t>) (T,)).
        Raises ``UsageError`` for a model trained on separate sentences."""
        if not self.reads_one_stream:
            raise UsageError(CACHE_NEEDS_STREAM)
        model.eval()
        ids = (ReversedSplit(split) if self.data.reverse else split).ids
        state = None
        for batch in StreamBatches(ids, 1, max(self.data.bptt, 256)).iterate(0):
            batch = batch.to(device)
            out = model(batch.tokens, state=state, previous=batch.previous)  # logits (T, 1, V)
            state = out.state
            targets = batch.tokens[:, 0]  # (T,)
            log_p = torch.log_softmax(out.logits[:, 0].double(), dim=-1).gather(1, targets[:, None])[:, 0]  # (T,)
            yield out.features[:, 0], targets, log_p

    def tune_cache(self, model, path: str, device, window: int | None = None) -> tuple[ContinuousCache, dict]:
        """θ and λ (and N, unless ``window`` is given) of the continuous cache with the lowest loss on
        the text file ``path`` (validation text, tokenized as in training), and the figures there:
        the best grid point's loss and perplexity, the model's alone, the grid."""
        with scratch("eval") as directory:
            chunks = list(self.cache_chunks(model, encode_file(path, self.tokenizer, self.vocab, self.data.line_breaks, directory), device))
        windows = [window] if window else CACHE_WINDOWS
        cache, grid = tune_continuous_cache(chunks, windows)
        best = min(row["loss"] for row in grid)
        return cache, {"data": path, "loss": best, "perplexity": perplexity(best), "model_perplexity": perplexity(cache_model_loss(chunks)),
                       "grid": grid, "notes": cache_grid_edges(cache, windows)}  # fmt: skip

    def describe(self, result: dict) -> str:
        line = f"loss {result['loss']:.4f} per token, perplexity {shown_perplexity(result['perplexity'])} ({result['count']} tokens)"
        if "cache" in result:
            c = result["cache"]
            line += f" with a continuous cache of {c['window']} steps (theta {c['theta']}, lambda {c['lambda']}); the model alone {shown_perplexity(result['model_perplexity'])}"
        return line

    def inspect_forward(self, model, text: str, device):
        """Run the model over ``text`` (for rnnkit.analysis.inspect): the tokens it read, and at each
        token the model's top five guesses for that token given the ones before it."""
        tokens: list[str] = []
        ids: list[int] = []  # a word "<EOS>" in the text is <UNK>; the line's end is <EOS>
        eos = self.data.line_breaks == "eos"
        for line in LINE_BREAK.split(text):  # LF, CRLF or lone CR, as textio reads files
            if not line.strip() and eos:
                continue
            words = typed_tokens(self.tokenizer, self.vocab, line)  # cut as rnnkit score cuts it
            words = words[::-1] if self.data.reverse else words
            tokens += words + (["<EOS>"] if eos else [NEWLINE])
            ids += self.vocab.encode(words, eos=eos) + ([] if eos else [self.vocab.ids.get(NEWLINE, self.vocab.unk_id)])
        tokens = tokens_to_inspect(tokens)  # blank lines give none when they end no sentence
        logits = model(torch.tensor(ids, device=device)[:, None]).logits  # (T, 1, V)
        top = logits[:, 0].float().softmax(-1).topk(min(5, len(self.vocab)), dim=-1)
        predictions = [[(self.vocab.tokens[i], round(float(p), 4)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)]
        return tokens, predictions

    def evaluate_file(self, model, path: str, device, cache: ContinuousCache | None = None) -> dict:
        """``evaluate`` on a text file, tokenized as in training (``cache``: as ``evaluate_examples``)."""
        with scratch("eval") as directory:  # the file's ids, streamed through
            split = encode_file(path, self.tokenizer, self.vocab, self.data.line_breaks, directory)
            if self.data.batching == "sentences":  # as in training: one line, one sequence; the run's batching is its own
                check_line_lengths(split, str(path), "; this run was trained with --batching sentences and reads each line as one sequence: break the text into lines")
            return self.evaluate_examples(model, split, device, cache)

    def report(self, model, step: int, device) -> list[str]:
        samples = self.generate(model, 3, SamplingOptions(max_length=self._sample_length()), seed=step, device=device)
        return [f"{text!r}  ({'seen in training data' if seen else 'novel'})" for text, seen in samples]

    def state_dict(self) -> dict:
        """Plain tensors, lists and dicts (a checkpoint loads with ``weights_only=True``): the carried
        state as its fields (``rnnkit.cells.state_fields``)."""
        return {"carried": None if self.carried is None else state_fields(self.carried)}

    def load_state_dict(self, state: dict) -> None:
        carried = state.get("carried")
        self.carried = None if carried is None else state_from_fields(carried)

    # -- sampling and scoring, for the CLI -------------------------------------------------------------
    def _sample_length(self) -> int:
        return 40 if self.data.level == "char" else 30

    def banned(self) -> list[int]:
        """Ids a sample never holds (``<UNK>`` is ``sample``'s business: see ``allow_unk``)."""
        return [self.vocab.pad_id]

    def _prime_lines(self, prime: str) -> list[str]:
        if self.data.line_breaks == "token":  # a line break is a token; a lone CR ending the prime is what
            return LINE_BREAK.split(prime.removesuffix("\r"))  # $(cat prime.txt) leaves of a CRLF file's last one
        return split_lines(prime) or [""]

    def prime_tokens(self, prime: str, name: str = "--prime") -> list[str]:
        """The tokens of a typed prime, cut as the training text was; a line break in the prime is the
        ``\\n`` token of a ``line_breaks="token"`` model. Raises ``UsageError`` naming ``name`` (the
        option, or a request's field) for a line break where each line is a sentence of its own
        (``line_breaks="eos"``): no sample starts mid-text; there, a line break that ends the prime
        (``$(cat prime.txt)`` keeps a CRLF file's CR) is none."""
        lines = self._prime_lines(prime)
        if len(lines) > 1 and self.data.line_breaks == "eos":
            raise UsageError(f"{name} holds a line break, but this model reads one line at a time (line_breaks eos); give one line")
        tokens: list[str] = []
        for i, line in enumerate(lines):
            tokens += ([NEWLINE] if i else []) + typed_tokens(self.tokenizer, self.vocab, line)
        return tokens

    def generate(self, model, num: int, options: SamplingOptions, *, seed=None, prime: str = "", device="cpu") -> list[tuple[str, bool]]:
        """Samples as text, each with whether it appears in the training data. A sample starts with
        ``prime`` exactly as typed, even where the vocabulary does not hold its characters or words
        (those are read as ``<UNK>``; ``prime_tokens`` and the vocabulary tell which). No sample holds
        ``<UNK>`` unless ``options.allow_unk``."""
        prime_tokens = self.prime_tokens(prime) if prime else []
        prime_ids = self.vocab.encode(prime_tokens)
        if self.data.reverse:
            return self._generate_reversed(model, num, options, seed, prime_tokens, "\n".join(self._prime_lines(prime)) if prime else "", device)
        rows = sample(model, num, options, eos_id=self.vocab.eos_id, banned=self.banned(), unk_id=self.vocab.unk_id, prime=prime_ids, seed=seed, device=device)
        head = self.tokenizer.detokenize(prime_tokens)
        typed = "\n".join(self._prime_lines(prime))
        out = []
        for ids in rows:
            text = self.tokenizer.detokenize(prime_tokens + self.vocab.decode(ids))
            if text.startswith(head):  # the prime as typed (not lowercased, no <UNK>), then the sample
                rest = text[len(head) :]
                if typed[-1:].isspace() and not head[-1:].isspace() and rest[:1] == " ":
                    rest = rest[1:]  # "The " at word level: the space typed is the space the tokens join with
                text = typed + rest
            out.append((text, self.is_seen(prime_ids + ids, typed=len(prime_ids))))
        return out

    def _generate_reversed(self, model, num: int, options: SamplingOptions, seed, prime_tokens: list[str], typed: str, device) -> list[tuple[str, bool]]:
        """``generate`` for a reversed model: the prime is the line's end, fed last token first; the
        model draws the tokens before it, last first; the line is printed in reading order, the prime
        as typed (``typed``), as ``generate`` prints it at a line's start."""
        prime_ids = self.vocab.encode(prime_tokens[::-1])
        rows = sample(model, num, options, eos_id=self.vocab.eos_id, banned=self.banned(), unk_id=self.vocab.unk_id, prime=prime_ids, seed=seed, device=device)
        tail = self.tokenizer.detokenize(prime_tokens)
        out = []
        for ids in rows:
            forward = self.vocab.decode(ids)[::-1] + prime_tokens  # reading order
            text = self.tokenizer.detokenize(forward)
            if typed and text.endswith(tail):  # the drawn start, then the prime as typed (not lowercased, no <UNK>)
                text = text[: len(text) - len(tail)] + typed
            out.append((text, self.is_seen(self.vocab.encode(forward))))
        return out

    def score_text(self, model, text: str, device="cpu") -> dict:
        """log P(text) = Σ log P(y<t> | y<1..t-1>) with each token's conditional probability; for a
        reversed model Σ log P(y<t> | y<t+1..T>), the tokens listed last first (then ``<EOS>``)."""
        from ..decoding import token_log_probs

        tokens = typed_tokens(self.tokenizer, self.vocab, text)
        tokens = tokens[::-1] if self.data.reverse else tokens  # a reversed model reads (and lists) them last first
        ids = self.vocab.encode(tokens, eos=self.data.line_breaks == "eos")
        if not ids:
            raise UsageError("nothing to score: the text has no tokens")
        shown = tokens + (["<EOS>"] if self.data.line_breaks == "eos" else [])
        log_probs = token_log_probs(model, ids, device)
        rows = [
            {"token": token, "id": i, "unknown": i == self.vocab.unk_id, "log_prob": lp, "prob": math.exp(lp)}
            for token, i, lp in zip(shown, ids, log_probs)
        ]
        total = sum(log_probs)
        return {"text": text, **({"reversed": True} if self.data.reverse else {}), "tokens": rows, "log_prob": total, "log10_prob": total / math.log(10), "perplexity": perplexity(-total / len(ids))}


def check_line_lengths(split: CorpusSplit, where: str, advice: str = "; use --batching stream or break the text into lines") -> None:
    """Refuse a split whose longest line (one sequence when batched by sentences) is over
    ``MAX_SEQUENCE_STEPS`` tokens, in one line naming ``where`` and ending in ``advice``
    (``check_sequence_lengths``)."""
    longest = (int(np.diff(split.offsets[i : i + 2**20 + 1]).max()) for i in range(0, len(split), 2**20))  # 8 MB at a time
    check_sequence_lengths(longest, where, advice)
