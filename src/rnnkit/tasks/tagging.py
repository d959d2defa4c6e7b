"""The tagging task: CoNLL files -> words, characters, casing, tags -> batches; CRF or softmax loss;
entity-level precision, recall and F1 (seqeval, strict IOB2) for evaluation and early stopping.

Tags are read in the file's scheme (``scheme``, CoNLL-2003: iob1) and the model learns them in
``train_scheme`` (iobes by default, which Lample et al. found slightly better); predictions are
converted to IOB2 for scoring and output.
"""

from __future__ import annotations

import random
import re
import sys
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..data.batches import SentenceBatches
from ..data.conll import TaggedSentence, allowed_transitions, convert, entities, read_conll
from ..data.text import fingerprint
from ..data.textio import DataError
from ..data.tokenizers import read_form, word_rule
from ..data.vocab import SPECIALS, Vocabulary
from ..data.word_vectors import initialise_rows, read_word_vectors, sized_from
from ..errors import UsageError
from ..metrics import entity_scores, percent, spelled_apart
from ..models.lm_features import LMFeatures, lm_features_size, record_lm_features
from ..models.tagger import best_tags, casing, product_of_experts, tag_loss
from ..distributed import SINGLE
from .base import TaskBase, known_word, treebank_vocabulary, treebank_words
from .tagging_spec import MODEL_DEFAULTS, TaggingDataConfig, TaggingSpec  # noqa: F401  (its settings, imported from here too)

CHUNK_CELLS = 1 << 20  # sentences x tokens x characters padded in one evaluated chunk, at most (bar one sentence alone)


def say_unseen_types(where: str, gold: set[str], types: set[str]) -> None:
    """A note on standard error when the tags ``gold`` of a held-out file hold entity types outside
    ``types`` (the training data's): the tagger cannot predict them, and they count as missed."""
    unseen = sorted({t[2:] for t in gold if t != "O"} - types)
    if unseen:
        print(f"rnnkit: note: {where} has entity types the training data never shows ({', '.join(unseen[:5])}): the tagger "
              "cannot predict them, and they count as missed in its scores", file=sys.stderr, flush=True)  # fmt: skip


@dataclass
class TaggingBatch:
    words: Tensor  # (T, B) word ids
    chars: Tensor  # (T, B, L) character ids
    char_lengths: Tensor  # (T, B)
    cases: Tensor  # (T, B) casing categories
    tags: Tensor  # (T, B) tag ids, -100 on padding
    lengths: Tensor  # (B,)
    tokens: list[list[str]] = field(default_factory=list)  # the words as read, for language-model features
    lm_features: Tensor | None = None  # (T, B, F) frozen language-model states (TaggingTask.on_device)

    def to(self, device) -> "TaggingBatch":
        moved = (t.to(device) for t in (self.words, self.chars, self.char_lengths, self.cases, self.tags))
        return TaggingBatch(*moved, self.lengths, self.tokens, None if self.lm_features is None else self.lm_features.to(device))


def normalize_word(word: str) -> str:
    """How words are looked up: lowercased, every digit as 0 (the case is a separate feature)."""
    return re.sub(r"\d", "0", word.lower())


def beyond_ascii_punctuation(word: str) -> bool:
    """Whether ``word`` holds punctuation or a symbol outside ASCII (curly quotes, dashes, ellipsis,
    guillemets), which the Treebank's rules leave attached."""
    return any(ord(c) > 127 and unicodedata.category(c)[0] in "PS" for c in word)


class TaggingTask(TaggingSpec, TaskBase):
    """The work of the task that ``TaggingSpec`` declares (its settings and ``rnnkit train`` help)."""

    vocabularies = {"vocab.json": "words", "chars.json": "chars"}
    averages_runs = True  # --ensemble: the runs' taggers as one product of experts (scored_chunks)
    initialised_from = ("word_vectors",)
    criterion = "1 - validation entity F1"
    names = {"tags.json": "tags"}

    def __init__(self, data: TaggingDataConfig, words: Vocabulary, chars: Vocabulary, tags: list[str], splits=None, counts=None):
        self.data = data
        self.words, self.chars, self.tags = words, chars, tags
        self.tag_ids = {t: i for i, t in enumerate(tags)}
        self.splits: dict[str, list[TaggedSentence]] = splits or {}
        self.singletons = {w for w, n in (counts or {}).items() if n == 1}
        self.rng = random.Random(0)
        self.word_vectors = None  # rnnkit.data.word_vectors.WordVectors, read by prepare when asked
        self.lm_features = LMFeatures.read(data.lm_features) if data.lm_features else None  # frozen, from their runs

    # -- configuration ----------------------------------------------------------------------------------
    def model_config(self, values: dict) -> dict:
        values = sized_from(self.word_vectors, values, "word_embedding_size")
        sizes = {"vocab_size": len(self.words), "num_tags": len(self.tags), "char_vocab_size": len(self.chars)}
        return self._model_config(sizes | lm_features_size(self.lm_features), values)

    def initialise(self, model) -> None:
        """The word embedding rows of the words ``--word-vectors`` holds."""
        if self.word_vectors is not None:
            initialise_rows(model.features.words.weight, self.word_vectors)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: TaggingDataConfig, seed: int = 0):
        data.check()
        splits = cls.read_splits(data)
        counts: dict[str, int] = {}
        for sentence in splits["train"]:
            for token in sentence.tokens:
                counts[normalize_word(token)] = counts.get(normalize_word(token), 0) + 1
        words = Vocabulary.build([[normalize_word(t) for t in s.tokens] for s in splits["train"]], min_count=data.min_count)
        chars = Vocabulary.build([list(t) for s in splits["train"] for t in s.tokens])
        # "O" always has an id: a tag of the valid or test files that training never saw is learned as O
        tags = sorted({"O", *(t for s in splits["train"] for t in s.tags)}, key=lambda t: (t != "O", t[2:], t))
        if tags == ["O"]:  # a tagger of one tag learns nothing, and its entity F1 is 0 whatever it answers
            raise DataError(f"{', '.join(map(str, data.train))}: no entity tags, every token is O; "
                            "the tagger learns entity tags (B-X, I-X ...): is --tag-column the right column?")  # fmt: skip
        types = {t[2:] for t in tags if t != "O"}
        twice = spelled_apart(sorted(types))
        if twice:  # "B-PER" and "B-Per": two entity types learned apart, each scored apart, unsaid
            raise DataError(f"{', '.join(map(str, data.train))}: the entity types {' and '.join(map(repr, twice))} are one type written "
                            f"{len(twice)} ways (case or spaces apart); write every tag of a type alike")
        for name, sentences in splits.items():  # a held-out file the tagger cannot be scored on meaningfully: said
            if name == "train":
                continue
            where = getattr(data, name, None) or f"the {name} sentences split off {', '.join(map(str, data.train))}"
            gold = {t for s in sentences for t in s.tags}
            if gold <= {"O"}:  # entity F1 0 whatever the tagger answers: no best weights to choose, no figure to report
                raise DataError(f"{where}: no entity tags, every token is O; its entity F1 is 0 whatever the tagger answers: "
                                "is --tag-column the right column?")
            say_unseen_types(where, gold, types)
        record = {"train_files": list(data.train), "sentences": {k: len(v) for k, v in splits.items()}, "tags": tags}
        record["train_fingerprint"] = fingerprint([" ".join(s.tokens) + "|" + " ".join(s.tags) for s in splits["train"]])
        task = cls(data, words, chars, tags, splits, counts)
        task.seed, task.rng = seed, random.Random(seed)
        if data.word_vectors:  # the vocabulary's words are normalised: a file word matches by the same normalisation
            task.word_vectors = read_word_vectors(data.word_vectors, words.tokens, fallback=normalize_word)
            print(task.word_vectors.describe(len(SPECIALS)), file=sys.stderr, flush=True)
            record["word_vectors"] = task.word_vectors.record(len(SPECIALS))
        record |= record_lm_features(task.lm_features, data)
        return task, record

    @classmethod
    def read_file(cls, data: TaggingDataConfig, path: str, train: bool = False, scheme_fixed: bool = False) -> list[TaggedSentence]:
        """A CoNLL file's sentences, their tags converted from ``scheme`` to ``train_scheme``
        (``scheme_fixed``: a trained run's scheme, see ``read_conll``)."""
        sentences = read_conll(path, data.token_column, data.tag_column, data.scheme, scheme_fixed)
        return [TaggedSentence(s.tokens, convert(s.tags, data.scheme, data.train_scheme)) for s in sentences]


    # -- batches ------------------------------------------------------------------------------------------
    def collate(self, sentences: list[TaggedSentence], train: bool = False) -> TaggingBatch:
        B, T = len(sentences), max(len(s.tokens) for s in sentences)
        L = max(len(t) for s in sentences for t in s.tokens)
        words = torch.zeros(T, B, dtype=torch.long)
        chars = torch.zeros(T, B, L, dtype=torch.long)
        char_lengths = torch.zeros(T, B, dtype=torch.long)
        cases = torch.zeros(T, B, dtype=torch.long)
        tags = torch.full((T, B), -100, dtype=torch.long)
        for b, sentence in enumerate(sentences):
            for t, token in enumerate(sentence.tokens):
                word = normalize_word(token)
                if train and word in self.singletons and self.rng.random() < self.data.singleton_unk:
                    word = "<UNK>"
                words[t, b] = self.words.ids.get(word, self.words.unk_id)
                ids = self.chars.encode(list(token))
                chars[t, b, : len(ids)] = torch.tensor(ids)
                char_lengths[t, b] = len(ids)
                cases[t, b] = casing(token)
                if sentence.tags:
                    tags[t, b] = self.tag_ids.get(sentence.tags[t], self.tag_ids["O"])
        lengths = torch.tensor([len(s.tokens) for s in sentences])
        return TaggingBatch(words, chars, char_lengths, cases, tags, lengths, [s.tokens for s in sentences])

    def on_device(self, batch: TaggingBatch, device) -> TaggingBatch:
        """``batch`` on ``device``, with the frozen language models' features of its words (``--lm-features``)."""
        batch = batch.to(device)
        if self.lm_features is not None:
            self.before_training()  # done already when rnnkit.runs started the training; a task used on its own
            batch.lm_features = self.lm_features.features(batch.tokens, device)  # (T, B, F), no gradient
        return batch

    def lm_sentences(self) -> list[list[str]]:
        return [sentence.tokens for split in self.splits.values() for sentence in split]

    def batches_of(self, sentences: list[TaggedSentence], train: bool):
        return SentenceBatches(
            sentences, self.data.batch_size if train else self.data.eval_batch_size, seed=self.seed, shuffle=train,
            collate=lambda s: self.collate(s, train), length=lambda s: len(s.tokens),
        )  # fmt: skip

    # -- the trainer's Task protocol --------------------------------------------------------------------------
    def train_batches(self, epoch: int, start: int, shard=SINGLE):
        """The batches of ``epoch`` from ``start`` on; each batch draws its <UNK> replacements from
        a generator seeded by (epoch, batch), so a resumed run replaces the same words."""
        batches = self._batches("train", True).iterate(epoch, start, shard)
        index = start
        while True:
            self.rng = random.Random((self.seed * 1_000_003 + epoch) * 1_000_003 + index)  # read by collate, inside next()
            batch = next(batches, None)
            if batch is None:
                return
            yield batch
            index += 1

    def loss(self, model, batch: TaggingBatch, device):
        """The summed negative log-likelihood of the gold tags and the number of words; the emissions
        through ``model``'s own call, which under torchrun is DistributedDataParallel's (it has no
        ``loss``), the CRF read from the model inside it."""
        batch = self.on_device(batch, device)
        crf = getattr(model, "module", model).crf
        return tag_loss(crf, model(batch).logits, batch.tags, batch.lengths), int(batch.lengths.sum())

    @property
    def allowed(self) -> dict:
        """The train scheme's rules over the tag set (``allowed_transitions``): decoding chooses only
        paths they allow, so the tags printed always agree with the entities read from them."""
        return allowed_transitions(self.tags, self.data.train_scheme)

    def iob2(self, ids: list[int]) -> list[str]:
        """Tag ids, learned in ``train_scheme``, as IOB2 tags: what is scored and printed."""
        return convert([self.tags[k] for k in ids], self.data.train_scheme, "iob2")

    def predict(self, model, sentences: list[TaggedSentence], device, ensemble: Sequence = ()) -> list[list[str]]:
        """IOB2 tags for each sentence, by ``model`` alone or with ``ensemble`` (``scored_chunks``)."""
        return self._decoded(model, sentences, device, ensemble, with_loss=False)[0]

    @torch.no_grad()
    def _decoded(self, model, sentences: list[TaggedSentence], device, ensemble: Sequence = (),
                 with_loss: bool = True) -> tuple[list[list[str]], float, int]:  # fmt: skip
        """(IOB2 tags of each sentence, Σ loss against their gold tags, words) from one pass of
        ``scored_chunks``; without ``with_loss`` (typed text has no gold tags) the loss is 0."""
        total, count = 0.0, 0
        predicted: list[list[str] | None] = [None] * len(sentences)
        for indices, batch, crf, emissions in self.scored_chunks(model, sentences, device, ensemble):
            if with_loss:  # a CRF's loss costs a forward algorithm: not spent on each tagged or served text
                total += float(tag_loss(crf, emissions, batch.tags, batch.lengths))
            count += int(batch.lengths.sum())
            for i, ids in zip(indices, best_tags(crf, emissions, batch.lengths, self.allowed)):
                predicted[i] = self.iob2(ids)
        return predicted, total, count

    def evaluate_examples(self, model, sentences: list[TaggedSentence], device, ensemble: Sequence = ()) -> dict:
        """Loss per word and entity scores of ``model`` (with ``ensemble``: of the runs' product of
        experts) on ``sentences``, from one pass over them."""
        predicted, total, count = self._decoded(model, sentences, device, ensemble)
        gold = [convert(s.tags, self.data.train_scheme, "iob2") for s in sentences]
        scores = entity_scores(gold, predicted)
        result = {
            "loss": total / max(count, 1), "count": count, "criterion": 1 - scores["f1"], "f1": scores["f1"],
            "precision": scores["precision"], "recall": scores["recall"], "per_type": scores["per_type"],
        }  # fmt: skip
        return result | ({"ensemble": 1 + len(ensemble)} if ensemble else {})

    def evaluate_file(self, model, path: str, device, ensemble: Sequence = ()) -> dict:
        """Scores on a CoNLL file; with ``ensemble`` ((task, model) pairs of other tagger runs), of
        the runs' product of experts."""
        sentences = self.read_file(self.data, path, scheme_fixed=True)  # the run's own scheme, which eval cannot change
        say_unseen_types(path, {t for s in sentences for t in s.tags}, {t[2:] for t in self.tags if t != "O"})
        return self.evaluate_examples(model, sentences, device, ensemble)

    def scored_chunks(self, model, sentences: list[TaggedSentence], device, ensemble: Sequence = ()):
        """For each chunk of up to ``eval_batch_size`` sentences of similar length: their indices in
        ``sentences``, this task's batch of them (gold tag ids, lengths) and the output layer (crf,
        E (T, B, K)) of ``model``, or with ``ensemble`` of every run's tagger as one
        (``product_of_experts``; each run reads the words with its own vocabulary and language-model
        features). The runs must share their tags: else a ``UsageError``."""
        self.check_ensemble(model, ensemble)  # every run of an ensemble is a tagger's (cli.open_ensemble)
        members = [(self, model), *ensemble]
        for _, tagger in members:
            tagger.eval()
        order = sorted(range(len(sentences)), key=lambda i: len(sentences[i].tokens))  # less padding per chunk
        size = self.data.eval_batch_size
        start = 0
        while start < len(order):
            # the characters are padded to the chunk's longest sentence x its longest word: one long
            # word beside long sentences (64 texts to serve's /api/tag) asked for a 13 GB tensor
            end, steps, letters = start, 0, 0
            while end < len(order) and end - start < size:
                tokens = sentences[order[end]].tokens
                wider = max(steps, len(tokens)), max(letters, max(map(len, tokens), default=1))
                if end > start and wider[0] * wider[1] * (end - start + 1) > CHUNK_CELLS:
                    break
                (steps, letters), end = wider, end + 1
            indices, start = order[start:end], end
            chunk = [sentences[i] for i in indices]
            batches = [task.on_device(task.collate(chunk), device) for task, _ in members]
            if not ensemble:
                yield indices, batches[0], model.crf, model(batches[0]).logits  # (T, B, K)
                continue
            crf, emissions = product_of_experts([(tagger, tagger(batch).logits) for (_, tagger), batch in zip(members, batches)])
            yield indices, batches[0], crf, emissions

    def ensemble_mismatch(self, model, other_task, other_model) -> str | None:
        """Runs join when they learned the same tags in the same scheme, all with a CRF or all without."""
        if other_task.data.train_scheme != self.data.train_scheme:
            return f"it learned its tags as {other_task.data.train_scheme}, the first run as {self.data.train_scheme}"
        if other_task.tags != self.tags:
            return f"its tags differ from the first run's ({', '.join(sorted(set(self.tags) ^ set(other_task.tags))) or 'their order'} in one run only)"
        if (model.crf is None) != (other_model.crf is None):
            return "it has no CRF (trained with --no-crf) and the first run has one" if other_model.crf is None else "it has a CRF and the first run has none (--no-crf)"
        return None

    def describe(self, result: dict) -> str:
        return f"entity F1 {percent(result['f1'])} (precision {percent(result['precision'])}, recall {percent(result['recall'])}), loss {result['loss']:.4f} per word"

    def details(self, result: dict) -> list[str]:
        """Entity precision, recall and F1 per type, as a table."""
        lines = ["| type | precision | recall | F1 | entities |", "|---|---:|---:|---:|---:|"]
        for kind, s in sorted(result["per_type"].items()):
            lines.append(f"| {kind} | {percent(s['precision'])} | {percent(s['recall'])} | {percent(s['f1'])} | {s['support']} |")
        return lines

    # -- for the CLI -----------------------------------------------------------------------------------------
    def inspect_forward(self, model, text: str, device):
        """The words of ``text`` and, for each, the tagger's three most likely tags (emission softmax)."""
        tokens = self.typed_words(text)  # cut as rnnkit tag cuts it: the words inspected are the words tagged
        if not tokens:
            raise UsageError("nothing to inspect: the text has no words")
        emissions = model(self.on_device(self.collate([TaggedSentence(tokens, [])]), device)).logits[:, 0].float().softmax(-1)  # (T, K)
        top = emissions.topk(min(3, len(self.tags)), dim=-1)
        return tokens, [[(self.tags[i], round(float(p), 4)) for p, i in zip(ps.tolist(), ix.tolist())] for ps, ix in zip(top.values, top.indices)]

    def typed_steps(self, text: str) -> int:
        words = self.typed_words(text)  # and each word's characters are a sequence to the character encoder
        return max(len(words), max(map(len, words), default=0))

    def typed_words(self, text: str) -> list[str]:
        """The words of typed text, cut as the training sentences were: Penn-Treebank style when the
        vocabulary shows it (CoNLL files split "n't" and "'s" off), else by the word rule."""
        text = read_form(text)  # composed, as the training words were read
        if treebank_vocabulary(self.words):
            # the Treebank's rules split ASCII punctuation only: "“Germany”", "London…", "Germany—England"
            # stayed one unknown word each (entities missed); such a word is peeled or cut as below
            return [word for token in treebank_words(text, self.words)
                    for word in (self._known_within(token) if beyond_ascii_punctuation(token) else [token])]
        # the training words were cut by whoever wrote the file ("U.S.", "#NewYork", "e-mail" whole):
        # a word between spaces the vocabulary holds is kept, any other is cut by the word rule
        return [word for chunk in text.split() for word in self._known_within(chunk)]

    PEELED = 3  # punctuation characters looked past at each end of a typed word: "(U.S.)," holds "U.S."

    def _known_within(self, chunk: str) -> list[str]:
        """``chunk`` (a typed word between spaces) as the tagger's words: itself when the vocabulary
        holds it; else a word it holds once up to ``PEELED`` punctuation characters are taken off
        its ends ("U.S.," is "U.S." ","), those cut by the word rule; else the word rule's cut."""
        if known_word(chunk, self.words):
            return [chunk]
        n = len(chunk)
        for start in range(min(self.PEELED, n - 1) + 1):
            for end in range(n, max(n - self.PEELED, start + 1) - 1, -1):
                outside = chunk[:start] + chunk[end:]  # punctuation only: a letter's combining mark is no punctuation
                if outside and not any(c.isalnum() or unicodedata.category(c)[0] == "M" for c in outside) and known_word(chunk[start:end], self.words):
                    return word_rule().findall(chunk[:start]) + [chunk[start:end]] + word_rule().findall(chunk[end:])
        return word_rule().findall(chunk)

    def tag_text(self, model, text: str, device, ensemble: Sequence = ()) -> dict:
        """Tokenize typed text as the training text was, tag it; entities as (text, type, start, end)
        in tokens; ``unknown``: the words the vocabulary does not hold, as typed (their characters
        and casing still count). A text without words gives no tokens, no tags. With ``ensemble``:
        tagged by the runs' product of experts (``scored_chunks``), ``unknown`` to every run."""
        tokens = self.typed_words(text)
        tags = self.predict(model, [TaggedSentence(tokens, [])], device, ensemble)[0] if tokens else []
        spans = [{"text": " ".join(tokens[s:e]), "type": kind, "start": s, "end": e} for kind, s, e in entities(tags)]
        vocabularies = [self.words, *(task.words for task, _ in ensemble)]  # unknown: to every run
        unknown = list(dict.fromkeys(t for t in tokens if all(normalize_word(t) not in words for words in vocabularies)))
        return {"text": text, "tokens": tokens, "tags": tags, "entities": spans, "unknown": unknown}


def inline(result: dict) -> str:
    """Tokens with entities marked inline: [Teddy Roosevelt](PER) was a great President ."""
    tokens = list(result["tokens"])
    for span in reversed(result["entities"]):
        tokens[span["start"] : span["end"]] = [f"[{span['text']}]({span['type']})"]
    return " ".join(tokens)

