"""The translation task: line-aligned source and target files (or the built-in date task) ->
tokens -> ids -> batches; cross-entropy summed over target tokens; BLEU and chrF with sacreBLEU on
detokenized output for evaluation (the best weights follow validation BLEU).

Each side has its own tokenizer and vocabulary (``shared_vocab`` builds one for both), saved with the
run. Targets end with ``<EOS>``; the decoder's first input is the zero vector, as in the language model.
"""

from __future__ import annotations

import os
import sys

import torch

from ..data.batches import SentenceBatches, check_text_lengths, pad_sequences
from ..data.dates import check_locales, generate_dates
from ..data.parallel import note_if_bitext, read_parallel
from ..data.textio import file_identity
from ..data.text import DataError, fingerprint
from ..data.tokenizers import make_tokenizer, note_if_presegmented, read_form
from ..data.vocab import Vocabulary
from ..decoding import beam_search, max_target_length, translate_greedy
from ..errors import UsageError, require
from ..metrics import percent
from ..models.losses import token_loss
from .base import TaskBase, file_stem, tokens_to_inspect, typed_tokens
from .translation_spec import LONGEST_SIDE, MODEL_DEFAULTS, TranslationDataConfig, TranslationSpec  # noqa: F401  (its settings, imported from here too)


BEAM_ROWS = 4_096  # hypotheses decoded side by side at most (texts in a batch x beam width): a --beam 5000 over 64 texts took 13 GB


def source_and_target(argument: str) -> tuple[str, str]:
    """The two files of eval's ``SOURCE,TARGET``. A path may hold a comma itself ("a,b/v.de,a,b/v.en"):
    the argument is cut at the comma that leaves two existing files (a source "-" is standard input);
    cut at its only comma when none does, so that the reader names the missing file. Raises
    ``UsageError`` (one line) without a comma, or when no cut or more than one fits."""
    cuts = [(argument[:at], argument[at + 1 :]) for at, char in enumerate(argument) if char == ","]
    if not cuts or (len(cuts) == 1 and not cuts[0][1]):
        raise UsageError("eval of a translation run takes SOURCE,TARGET: two line-aligned files joined by a comma")
    existing = [(source, target) for source, target in cuts if (source == "-" or os.path.exists(source)) and os.path.exists(target)]
    if len(existing) == 1 or (not existing and len(cuts) == 1):
        return existing[0] if existing else cuts[0]
    if existing:
        raise UsageError(f"{argument}: cut at a comma it names two files in {len(existing)} ways ({'; '.join(f'{s} and {t}' for s, t in existing)[:200]}); rename one so that it holds no comma")
    raise UsageError(f"{argument}: cut at any of its {len(cuts)} commas it does not name two existing files (SOURCE,TARGET)")


class TranslationTask(TranslationSpec, TaskBase):
    """The work of the task that ``TranslationSpec`` declares (its settings and ``rnnkit train`` help)."""

    vocabularies = {"source_vocab.json": "source_vocab", "target_vocab.json": "target_vocab"}
    criterion = "-validation BLEU"
    tokenizers = {"source_tokenizer.json": "source_tokenizer", "target_tokenizer.json": "target_tokenizer"}

    def __init__(self, data: TranslationDataConfig, source_tokenizer, target_tokenizer, source_vocab: Vocabulary, target_vocab: Vocabulary, splits=None):
        self.data = data
        self.source_tokenizer, self.target_tokenizer = source_tokenizer, target_tokenizer
        self.source_vocab, self.target_vocab = source_vocab, target_vocab
        self.splits: dict[str, list[tuple[str, str]]] = splits or {}
        self._encoded_train: list | None = None  # the training pairs' ids (too long ones left out), encoded once

    # -- configuration ----------------------------------------------------------------------------------
    def model_config(self, values: dict) -> dict:
        config = self._model_config({"source_vocab_size": len(self.source_vocab), "target_vocab_size": len(self.target_vocab)}, values)
        if config["shared_embeddings"] and not self.data.shared_vocab:
            raise UsageError("--shared-embeddings needs --shared-vocab (one vocabulary for both sides)")
        return config

    def data_name(self) -> str:
        return "dates" if self.data.dates else file_stem(self.data.source)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: TranslationDataConfig, seed: int = 0):
        data.check()
        if data.dates:
            locales = tuple(data.date_locales or ("en_US",))
            check_locales(locales)
            pairs = generate_dates(data.dates + 2000, seed=1234, locales=locales)
            splits = {"train": pairs[:-2000], "valid": pairs[-2000:-1000], "test": pairs[-1000:]}
            record = {"dates": data.dates, "generator_seed": 1234, "locales": list(locales)}
        else:
            splits = {"train": read_parallel(data.source, data.target)}
            for name in ("valid", "test"):
                if getattr(data, f"{name}_source"):
                    splits[name] = read_parallel(getattr(data, f"{name}_source"), getattr(data, f"{name}_target"))
            record = {"train_files": [data.source, data.target]}
            for side, index in (("source", 0), ("target", 1)):  # a one-file bitext given as one side: each pair learnt as one sentence
                note_if_bitext(f"--{side} {getattr(data, side)}", [pair[index] for pair in splits["train"]])
        record["pairs"] = {k: len(v) for k, v in splits.items()}
        record["train_fingerprint"] = fingerprint([f"{s}\t{t}" for s, t in splits["train"]])
        for side, index in (("source", 0), ("target", 1)):  # joined by our detokenizer, another tool's pieces would score a wrong BLEU
            note_if_presegmented(f"the {side} text", (pair[index] for pair in splits["train"]), data.level)
        settings = {"kind": data.level, "lowercase": data.lowercase, **({"vocab_size": data.bpe_vocab} if data.level == "bpe" else {})}
        source_tokenizer, target_tokenizer = make_tokenizer(settings), make_tokenizer(settings)
        if data.shared_vocab:
            source_tokenizer.fit([s for pair in splits["train"] for s in pair])
            target_tokenizer = source_tokenizer
        else:
            source_tokenizer.fit([s for s, _ in splits["train"]])
            target_tokenizer.fit([t for _, t in splits["train"]])
        source_tokens = [source_tokenizer.tokenize(s) for s, _ in splits["train"]]
        target_tokens = [target_tokenizer.tokenize(t) for _, t in splits["train"]]
        if data.shared_vocab:
            source_vocab = target_vocab = Vocabulary.build(source_tokens + target_tokens, data.max_vocab, data.min_count)
        else:
            source_vocab = Vocabulary.build(source_tokens, data.max_vocab, data.min_count)
            target_vocab = Vocabulary.build(target_tokens, data.max_vocab, data.min_count)
        task = cls(data, source_tokenizer, target_tokenizer, source_vocab, target_vocab, splits)
        task.seed = seed
        for name in ("valid", "test"):  # before training, not at the evaluation after it
            if name in splits and not data.dates:
                task.check_lengths(splits[name], f"{getattr(data, f'{name}_source')},{getattr(data, f'{name}_target')}")
        return task, record

    @classmethod
    def read_file(cls, data: TranslationDataConfig, path: str, train: bool = False) -> list[tuple[str, str]]:
        """``SOURCE,TARGET``: two line-aligned files joined by a comma (``rnnkit eval``)."""
        source, target = source_and_target(path)
        if source != "-" and file_identity(source) == file_identity(target):  # as training refuses it: scores of a copy
            raise UsageError(f"{path}: the source and the reference are the same file; give the source and its translation")
        return read_parallel(source, target)

    max_sequence_steps = LONGEST_SIDE  # of typed text too (check_typed_lengths)

    def check_lengths(self, pairs: list[tuple[str, str]], where: str) -> None:
        """A ``DataError`` naming ``where`` for a pair with more than ``LONGEST_SIDE`` tokens on a side
        (training leaves out its pairs longer than --max-length; held-out pairs are read whole)."""
        for index, (side, tokenizer) in enumerate((("source", self.source_tokenizer), ("target", self.target_tokenizer))):
            check_text_lengths([pair[index] for pair in pairs], tokenizer.tokenize, f"{where} ({side} side)",
                               advice="; a translation pair is a sentence or two", limit=self.max_sequence_steps)  # fmt: skip

    def evaluate_file(self, model, path: str, device) -> dict:
        pairs = self.read_file(self.data, path)
        self.check_lengths(pairs, path)
        return self.evaluate_examples(model, pairs, device)

    # -- batches ------------------------------------------------------------------------------------------
    def encode_source(self, text: str) -> list[int]:
        return self.source_vocab.encode(self.source_tokenizer.tokenize(text)) or [self.source_vocab.unk_id]

    def encode_target(self, text: str) -> list[int]:
        return self.target_vocab.encode(self.target_tokenizer.tokenize(text), eos=True)

    def _encode_pairs(self, pairs: list[tuple[str, str]]) -> list[tuple[list[int], list[int]]]:
        return [(self.encode_source(s), self.encode_target(t)) for s, t in pairs]

    def _train_examples(self) -> list[tuple[list[int], list[int]]]:
        """The training pairs' ids, those longer than ``max_length`` left out."""
        if self._encoded_train is None:
            encoded = self._encode_pairs(self.splits["train"])
            pairs = [p for p in encoded if len(p[0]) <= self.data.max_length and len(p[1]) <= self.data.max_length + 1]
            if not pairs:
                where = f"{self.data.source}, {self.data.target}" if self.data.source else "the generated date pairs"
                raise DataError(f"{where}: every training pair has more than --max-length {self.data.max_length} tokens on a side; "
                                "raise --max-length")
            if len(pairs) < len(encoded):  # said, not silent: a fifth of a corpus can be long sentences
                print(f"rnnkit: {len(encoded) - len(pairs)} of {len(encoded)} training pairs have more than --max-length "
                      f"{self.data.max_length} tokens on a side and are left out of training", file=sys.stderr, flush=True)
            self._encoded_train = pairs
        return self._encoded_train

    @staticmethod
    def collate(pairs):
        return pad_sequences([s for s, _ in pairs]), pad_sequences([t for _, t in pairs])

    def batches_of(self, pairs: list[tuple[str, str]], train: bool):
        examples = self._train_examples() if train and pairs is self.splits.get("train") else self._encode_pairs(pairs)
        return SentenceBatches(examples, self.data.batch_size if train else self.data.eval_batch_size, seed=self.seed, shuffle=train, collate=self.collate, length=lambda p: len(p[0]))

    # -- the trainer's Task protocol ----------------------------------------------------------------------
    def loss(self, model, batch, device):
        source, target = batch
        logits = model(source.tokens.to(device), source.lengths, target.tokens.to(device)).logits  # (T, B, V)
        return token_loss(logits, target.tokens.to(device), self.target_vocab.pad_id)

    def evaluate(self, model, split: str, device) -> dict:
        """Validation decodes with ``eval_beam`` (BLEU on the first ``eval_sentences`` pairs), the test
        set with ``beam``."""
        if split == "test":
            return self.evaluate_examples(model, self.splits[split], device, beam=self.data.beam)
        return self.evaluate_examples(model, self.splits[split], device, beam=self.data.eval_beam, scored=self.data.eval_sentences)

    @torch.no_grad()
    def evaluate_examples(self, model, pairs: list[tuple[str, str]], device, beam: int | None = None, scored: int | None = None) -> dict:
        """The loss per target token of every pair; BLEU, chrF and exact match of the first ``scored``
        (None: all) translated with ``beam`` (None: the test set's ``beam``)."""
        total, count = self.summed_loss(model, self.batches_of(pairs, False), device)
        pairs = pairs[:scored] if scored else pairs
        outputs = [r[0]["text"] for r in self.translate(model, [s for s, _ in pairs], device, beam=beam or self.data.beam)]
        scores = self.scores(outputs, [t for _, t in pairs])
        return {"loss": total / max(count, 1), "count": count, "criterion": -scores["bleu"], **scores}

    def scores(self, outputs: list[str], references: list[str]) -> dict:
        """Corpus BLEU and chrF (sacreBLEU, default settings), and exact-match accuracy; all three
        case-blind for a ``--lowercase`` run, whose translations are lower case (sacreBLEU's
        ``lowercase``, which its signatures then say: ``case:lc``)."""
        sacrebleu = require("sacrebleu", extra="translation", purpose="translation metrics are computed")
        lowercase = bool(self.data.lowercase)
        bleu = sacrebleu.metrics.BLEU(lowercase=lowercase)
        chrf = sacrebleu.metrics.CHRF(lowercase=lowercase)
        read = [read_form(r) for r in references]  # composed, without invisible characters: as the model reads and writes text
        changed = sum(r != written for r, written in zip(read, references))
        outputs, references = [read_form(o) for o in outputs], read
        b, c = bleu.corpus_score(outputs, [references]), chrf.corpus_score(outputs, [references])
        same = (lambda o, r: o.strip().lower() == r.strip().lower()) if lowercase else (lambda o, r: o.strip() == r.strip())
        exact = sum(same(o, r) for o, r in zip(outputs, references)) / max(len(references), 1)
        return {"bleu": b.score, "chrf": c.score, "exact_match": exact, "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
                "references_read_otherwise": changed}

    def describe(self, result: dict) -> str:
        return f"BLEU {result['bleu']:.2f}, chrF {result['chrf']:.2f}, exact match {percent(result['exact_match'])}, loss {result['loss']:.4f} per token"

    def details(self, result: dict) -> list[str]:
        """sacreBLEU's signatures, which say how BLEU and chrF were computed (Post 2018): without
        them the two figures cannot be compared with anyone else's."""
        lines = [f"{name} signature: {result[key]}" for name, key in (("BLEU", "bleu_signature"), ("chrF", "chrf_signature")) if result.get(key)]
        if result.get("references_read_otherwise"):  # sacreBLEU on the file itself would score those lines as written
            lines.append(f"note: {result['references_read_otherwise']:,} reference lines were scored as rnnkit reads text, composed "
                         "(Unicode NFC) and without invisible characters; sacrebleu on the file as written scores them otherwise")
        return lines

    # -- translating, for the trainer's evaluation and the CLI -------------------------------------------------
    def translate(self, model, texts: list[str], device, beam: int = 1, nbest: int = 1, replace_unk: bool = False, batch_size: int | None = None, typed: bool = False) -> list[list[dict]]:
        """For each text, its ``nbest`` translations: text, tokens, score, log_prob, attention.
        ``typed``: the texts are as a user typed them (cut as the training text was, ``typed_tokens``).
        Raises ``UsageError`` when ``nbest`` exceeds ``beam``: a beam of K holds K hypotheses, and a
        wider beam than asked for would give other translations than the beam asked for."""
        if nbest > beam:
            raise UsageError(f"--nbest {nbest} cannot exceed the beam width {beam}: give --beam {nbest} or more")
        if typed:
            tokenize = self.typed_source
        else:
            tokenize = self.source_tokenizer.tokenize
        out, batch_size = [], batch_size or self.data.eval_batch_size
        batch_size = max(1, min(batch_size, BEAM_ROWS // beam))  # texts x beam hypotheses decoded at once: memory bounded at any beam
        for i in range(0, len(texts), batch_size):
            chunk = texts[i : i + batch_size]
            source_tokens = [tokenize(t) for t in chunk]
            batch = pad_sequences([self.source_vocab.encode(tokens) or [self.source_vocab.unk_id] for tokens in source_tokens])
            source = batch.tokens.to(device)
            limit = max_target_length(batch.lengths.tolist(), self.data.length_ratio, self.data.length_extra)
            banned = [self.target_vocab.pad_id]
            if beam > 1 or nbest > 1:
                results = beam_search(model, source, batch.lengths, eos_id=self.target_vocab.eos_id, beam=beam, max_length=limit, alpha=self.data.length_alpha, nbest=nbest, banned=banned)
            else:
                results = [[h] for h in translate_greedy(model, source, batch.lengths, eos_id=self.target_vocab.eos_id, max_length=limit, banned=banned)]
            for tokens_in, hypotheses in zip(source_tokens, results):
                out.append([self._render(h, tokens_in, replace_unk) for h in hypotheses])
        return out

    def _render(self, hypothesis, source_tokens: list[str], replace_unk: bool) -> dict:
        tokens = self.target_vocab.decode(hypothesis.tokens, stop_at_eos=False)
        if replace_unk and hypothesis.attention and source_tokens:  # a source without tokens has no word to copy
            # an <UNK> becomes the source word the decoder attended to most at that step
            tokens = [
                source_tokens[max(range(len(source_tokens)), key=lambda s: hypothesis.attention[t][s])] if token == "<UNK>" and t < len(hypothesis.attention) else token
                for t, token in enumerate(tokens)
            ]
        return {"text": self.target_tokenizer.detokenize(tokens), "tokens": tokens, "score": hypothesis.score, "log_prob": hypothesis.log_prob, "attention": hypothesis.attention}

    def typed_steps(self, text: str) -> int:
        return len(self.typed_source(text))

    def typed_source(self, text: str) -> list[str]:
        """The source tokens of a typed text: cut as the training text was (``typed_tokens``), without
        white space at its ends, as the training pairs were read (``read_parallel``)."""
        return typed_tokens(self.source_tokenizer, self.source_vocab, text.strip())

    def inspect_forward(self, model, text: str, device):
        """The encoder reading ``text`` (the decoder's units are not shown)."""
        tokens = tokens_to_inspect(self.typed_source(text))  # cut as rnnkit translate cuts it
        model.start(torch.tensor(self.source_vocab.encode(tokens), device=device)[:, None])
        return tokens, None

