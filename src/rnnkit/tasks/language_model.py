"""The language-model task: text files -> tokens -> ids -> batches, the summed loss, evaluation,
samples during training, and the artifacts a run keeps so that scoring and sampling later tokenize
exactly as training did.

Data layout. Each non-blank line of the input files is a sentence (or a name, or a line of a play):
with ``line_breaks="eos"`` every line ends with ``<EOS>``; with ``line_breaks="token"`` the file
is one stream and a line break is a token of its own (``\\n``), blank lines included. With only a
training file, valid and test lines are split off it deterministically (``split`` fractions,
``split_seed``) and the split is recorded in the run's config.
"""

from __future__ import annotations

import hashlib
import math
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..data.batches import SentenceBatches, StreamBatches, TokenBatch
from ..data.text import DataError, fingerprint, read_lines, split_lines
from ..data.tokenizers import Tokenizer, make_tokenizer
from ..data.vocab import Vocabulary
from ..decoding import SamplingOptions, sample
from ..models.language_model import token_loss
from ..training.checkpoint import RunDir
from ..training.distributed import SINGLE
from .base import TaskBase, as_path_list

NEWLINE = "\n"


@dataclass
class LMDataConfig:
    train: list[str] = field(default_factory=list)  # training text files
    valid: str | None = None
    test: str | None = None
    split: tuple[float, float] = (0.05, 0.05)  # valid, test fractions when only train is given
    split_seed: int = 0
    level: str = "char"  # char | word | whitespace | bpe
    lowercase: bool = False
    bpe_vocab: int = 4000
    line_breaks: str = "eos"  # eos | token
    max_vocab: int | None = None
    min_count: int = 1
    batching: str = "sentences"  # sentences | stream
    batch_size: int = 32
    bptt: int = 64  # steps per chunk with batching="stream"
    eval_batch_size: int = 10

    def check(self) -> None:
        if not self.train:
            raise DataError("no training file given")
        if self.line_breaks not in ("eos", "token"):
            raise ValueError(f"line_breaks must be 'eos' or 'token', got {self.line_breaks!r}")
        if self.batching not in ("sentences", "stream"):
            raise ValueError(f"batching must be 'sentences' or 'stream', got {self.batching!r}")
        if self.batching == "sentences" and self.line_breaks == "token":
            raise ValueError("batching 'sentences' needs line_breaks 'eos' (each line is a sentence); use batching 'stream'")


def detach_state(state):
    """A recurrent state (a tensor or an LSTMState) cut from its autograd history."""
    return type(state)(*(s.detach() for s in state)) if isinstance(state, tuple) else state.detach()


def _token_key(tokens: list[str]) -> bytes:
    return hashlib.sha1("\x1f".join(tokens).encode("utf-8")).digest()[:8]


MODEL_DEFAULTS = dict(
    cell="lstm", embedding_size=64, hidden_size=256, num_layers=1, dropout=0.0, head_sizes=[], tie_embeddings=False, engine="auto"
)


class LanguageModelTask(TaskBase):
    kind = "lm"
    model_kind = "lm"
    Data = LMDataConfig
    model_defaults = MODEL_DEFAULTS

    def __init__(self, data: LMDataConfig, tokenizer: Tokenizer, vocab: Vocabulary, splits: dict[str, list[str]] | None = None):
        self.data = data
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.splits = splits or {}
        self.seen: set[bytes] = set()
        self.carried = None  # the recurrent state carried across stream chunks (detached)
        self._encoded: dict[str, list] = {}
        if "train" in self.splits:
            self.seen = {_token_key(self.tokenizer.tokenize(line)) for line in self.splits["train"]}
            self._train = self._batches("train", shuffle=True)

    # -- configuration -------------------------------------------------------------------------------
    @classmethod
    def data_config(cls, values: dict) -> LMDataConfig:
        config = LMDataConfig(**values)
        config.split = tuple(config.split)
        config.train = as_path_list(config.train)
        return config

    def model_config(self, values: dict) -> dict:
        """The language model's constructor arguments: defaults, then ``values``."""
        return self._model_config({"vocab_size": len(self.vocab)}, values)

    def default_run_name(self, model_config: dict) -> str:
        return f"{Path(self.data.train[0]).stem}-{self.data.level}-{model_config['cell']}"

    # -- building --------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: LMDataConfig, seed: int = 0) -> tuple["LanguageModelTask", dict]:
        """Read and split the data, fit the tokenizer, build the vocabulary. Returns the task and
        a record of the split for the run's config."""
        data.check()
        keep_blank = data.line_breaks == "token"
        train = [line for path in data.train for line in read_lines(path, keep_blank=keep_blank)]
        record = {"train_files": list(data.train), "train_fingerprint": fingerprint(train)}
        if data.valid or data.test:
            splits = {"train": train}
            for name in ("valid", "test"):
                path = getattr(data, name)
                if path:
                    splits[name] = read_lines(path, keep_blank=keep_blank)
                    record[f"{name}_file"] = path
        else:
            valid_fraction, test_fraction = data.split
            tr, va, te = split_lines(train, valid_fraction, test_fraction, data.split_seed)
            splits = {"train": tr, "valid": va, "test": te}
            record["made_split"] = {"valid": valid_fraction, "test": test_fraction, "seed": data.split_seed}
        record["lines"] = {name: len(lines) for name, lines in splits.items()}
        tokenizer = make_tokenizer({"kind": data.level, "lowercase": data.lowercase, **({"vocab_size": data.bpe_vocab} if data.level == "bpe" else {})})
        tokenizer.fit(splits["train"])
        token_lists = [tokenizer.tokenize(line) for line in splits["train"]]
        if data.line_breaks == "token":
            token_lists.append([NEWLINE])
        vocab = Vocabulary.build(token_lists, data.max_vocab, data.min_count)
        return cls(data, tokenizer, vocab, splits), record

    def save(self, run: RunDir) -> None:
        run.write_json("vocab.json", {"tokens": self.vocab.tokens})
        run.write_json("tokenizer.json", self.tokenizer.config())
        run.write_bytes("seen.bin", array("B", b"".join(sorted(self.seen))).tobytes())

    @classmethod
    def load(cls, run: RunDir, data: LMDataConfig) -> "LanguageModelTask":
        """The task as a trained run needs it for scoring and sampling (no data files read)."""
        vocab = Vocabulary(run.read_json("vocab.json")["tokens"])
        task = cls(data, make_tokenizer(run.read_json("tokenizer.json")), vocab)
        raw = run.file("seen.bin").read_bytes() if run.file("seen.bin").exists() else b""
        task.seen = {raw[i : i + 8] for i in range(0, len(raw), 8)}
        return task

    # -- encoding ----------------------------------------------------------------------------------------
    def encode_line(self, line: str) -> list[int]:
        return self.vocab.encode(self.tokenizer.tokenize(line), eos=self.data.line_breaks == "eos")

    def encode_stream(self, lines: list[str]) -> list[int]:
        ids: list[int] = []
        for line in lines:
            ids += self.encode_line(line)
            if self.data.line_breaks == "token":
                ids.append(self.vocab.ids[NEWLINE])
        return ids

    def _batches(self, split: str, shuffle: bool):
        lines = self.splits[split]
        if self.data.batching == "stream":
            ids = self.encode_stream(lines)
            if shuffle:
                return StreamBatches(ids, self.data.batch_size, self.data.bptt)
            # evaluation: fewer, longer columns (state carried across chunks, as in training)
            return StreamBatches(ids, max(1, min(self.data.eval_batch_size, len(ids) // 2)), max(self.data.bptt, 256))
        return SentenceBatches([self.encode_line(line) for line in lines], self.data.batch_size if shuffle else 64, shuffle=shuffle)

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
        batch = batch.to(device)
        logits, state = model(batch.tokens, lengths=batch.lengths, state=self.carried, previous=batch.previous)
        if self.data.batching == "stream":  # carry the state into the next chunk, without its history
            self.carried = detach_state(state)
        return token_loss(logits, batch.tokens, self.vocab.pad_id)

    @torch.no_grad()
    def evaluate(self, model, split: str, device) -> dict:
        """Loss per token (nats) over a split, perplexity, and the number of tokens."""
        model.eval()
        batches = self._batches(split, shuffle=False)
        total, count, state = 0.0, 0, None
        for batch in batches.iterate(0):
            batch = batch.to(device)
            logits, state = model(batch.tokens, lengths=batch.lengths, state=state if self.data.batching == "stream" else None, previous=batch.previous)
            loss_sum, n = token_loss(logits, batch.tokens, self.vocab.pad_id)
            total += float(loss_sum)
            count += n
        loss = total / max(count, 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 50)), "count": count}

    def describe(self, result: dict) -> str:
        return f"loss {result['loss']:.4f} per token, perplexity {result['perplexity']:.2f} ({result['count']} tokens)"

    def inspect_forward(self, model, text: str, device):
        """Run the model over ``text`` (for rnnkit.analysis.inspect): the tokens it read, and at each
        token the model's top five guesses for that token given the ones before it."""
        tokens: list[str] = []
        for line in text.split("\n"):
            if not line.strip() and self.data.line_breaks == "eos":
                continue
            tokens += self.tokenizer.tokenize(line) + (["<EOS>"] if self.data.line_breaks == "eos" else [NEWLINE])
        ids = [self.vocab.eos_id if t == "<EOS>" else self.vocab.ids.get(t, self.vocab.unk_id) for t in tokens]
        logits, _ = model(torch.tensor(ids, device=device)[:, None])
        top = logits[:, 0].float().softmax(-1).topk(min(5, len(self.vocab)), dim=-1)
        predictions = [[(self.vocab.tokens[i], round(float(p), 4)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)]
        return tokens, predictions

    def evaluate_file(self, model, path: str, device) -> dict:
        """``evaluate`` on a text file, tokenized as in training."""
        with self._file_split(read_lines(path, keep_blank=self.data.line_breaks == "token")) as split:
            return self.evaluate(model, split, device)

    def report(self, model, step: int, device) -> list[str]:
        samples = self.generate(model, 3, SamplingOptions(max_length=self._sample_length()), seed=step, device=device)
        return [f"{text!r}  ({'seen in training data' if seen else 'novel'})" for text, seen in samples]

    def state_dict(self) -> dict:
        return {"carried": self.carried}

    def load_state_dict(self, state: dict) -> None:
        self.carried = state.get("carried")

    # -- sampling and scoring, for the CLI -------------------------------------------------------------
    def _sample_length(self) -> int:
        return 40 if self.data.level == "char" else 30

    def banned(self) -> list[int]:
        return [self.vocab.pad_id]

    def generate(self, model, num: int, options: SamplingOptions, *, seed=None, prime: str = "", device="cpu") -> list[tuple[str, bool]]:
        """Samples as text, each with whether it appears in the training data."""
        prime_ids = self.vocab.encode(self.tokenizer.tokenize(prime)) if prime else []
        rows = sample(model, num, options, eos_id=self.vocab.eos_id, banned=self.banned(), prime=prime_ids, seed=seed, device=device)
        out = []
        for ids in rows:
            tokens = self.vocab.decode(prime_ids + ids)
            out.append((self.tokenizer.detokenize(tokens), _token_key(tokens) in self.seen))
        return out

    def score_text(self, model, text: str, device="cpu") -> dict:
        """log P(text) = Σ log P(y<t> | y<1..t-1>) with each token's conditional probability."""
        from ..decoding import token_log_probs

        tokens = self.tokenizer.tokenize(text)
        ids = self.vocab.encode(tokens, eos=self.data.line_breaks == "eos")
        if not ids:
            raise ValueError("nothing to score: the text has no tokens")
        shown = tokens + (["<EOS>"] if self.data.line_breaks == "eos" else [])
        log_probs = token_log_probs(model, ids, device)
        rows = [
            {"token": token, "id": i, "unknown": i == self.vocab.unk_id, "log_prob": lp, "prob": math.exp(lp)}
            for token, i, lp in zip(shown, ids, log_probs)
        ]
        total = sum(log_probs)
        return {"text": text, "tokens": rows, "log_prob": total, "log10_prob": total / math.log(10), "perplexity": math.exp(-total / len(ids))}
