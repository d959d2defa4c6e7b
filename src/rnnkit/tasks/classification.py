"""The classification task: labelled texts -> word ids -> batches; cross-entropy per sequence;
accuracy, macro-F1, mean absolute error (for numeric labels such as 1-5 ratings) and the confusion
matrix (also as a PNG) for evaluation. Early stopping and the best weights follow accuracy.

With PTB-tree files (the Stanford Sentiment Treebank), training uses every labelled phrase
(``phrases``) while validation and test use whole sentences, as Socher et al. and Kim did.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence

from pathlib import Path

import torch
import torch.nn.functional as F

from ..data.batches import SentenceBatches, TokenBatch, check_text_lengths, pad_sequences
from ..data.labeled import LabeledText, detect_format, named_csv, names_its_labels, read_labeled
from ..data.text import DataError, fingerprint
from ..data.tokenizers import make_tokenizer
from ..data.vocab import SPECIALS, Vocabulary
from ..data.word_vectors import initialise_rows, read_word_vectors, sized_from
from ..errors import UsageError, finite_outputs
from ..models.lm_features import LMFeatures, lm_features_size, record_lm_features
from ..metrics import classification_scores, label_key, label_number, percent, spelled_apart
from .base import TaskBase, tokens_to_inspect, typed_tokens
from .classification_spec import ClassificationDataConfig, ClassificationSpec, MODEL_DEFAULTS  # noqa: F401  (its settings, imported from here too)
from .pretrained import read_start


MOST_LABELS_PER_EXAMPLE = 0.5  # more classes than half the training texts: the label column holds the texts


def _label_order(labels: set[str]) -> list[str]:
    if all(label_number(label) is not None for label in labels):
        return sorted(labels, key=label_number)  # ratings: numeric order, so the mean absolute error means something
    return sorted(labels)


def _one_label_spelled_apart(files: str, labels: list[str]) -> None:
    """Refuse labels that are one class written two ways (``label_key``): read as text they would
    be two classes, each learned from part of the examples (a spreadsheet's float column, an edit
    in another case, a non-breaking space)."""
    twice = spelled_apart(labels)
    if twice:
        how = "number" if label_number(twice[0]) is not None else "label (case or spaces apart)"
        raise DataError(f"{files}: the labels {' and '.join(map(repr, twice))} are one {how} written {len(twice)} ways; "
                        "write every label of a class alike")


def spelled_otherwise(unknown, labels: list[str]) -> str:
    """For an error about held-out labels training did not see: those that are a training label
    written otherwise ("Positive" for "positive", "2.0" for "2"), with that spelling; else nothing."""
    keys = {label_key(label): label for label in labels}
    written = [f"{label!r} is written {keys[label_key(label)]!r} there" for label in sorted(unknown) if label_key(label) in keys]
    return f" ({'; '.join(written)}: write every label of a class alike)" if written else ""


LABEL_LISTS = re.compile(r"\s*[,;|]\s*")  # how a column of several labels per text joins them ("2,27", "news|sport")
DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d")  # a rating with a decimal comma ("1,5"), not a list ("2,27" is one)


def _several_labels_in_one(files: str, labels: list[str]) -> None:
    """Refuse a label that lists labels of their own ("2,27" beside "2" and "27": GoEmotions'
    column): read as text it would be a class of its own. fastText's several labels per line are
    refused by its reader alike; the classifier takes one label per text. Labels that all read as
    numbers with a decimal comma ("1,5", "4,5" beside "1" and "5": a European spreadsheet's
    ratings) are numbers, not lists."""
    single = set(labels)
    lists = [label for label in labels if len(parts := [p for p in LABEL_LISTS.split(label) if p]) > 1 and all(p in single for p in parts)]
    if lists and not all(DECIMAL_COMMA.fullmatch(label) for label in lists):
        parts = [part for part in LABEL_LISTS.split(lists[0]) if part]
        raise DataError(f"{files}: the label {lists[0]!r} lists several labels ({', '.join(map(repr, parts))}, each a label of its own); "
                        "the classifier takes one label per text: keep one label per line")


GLUED = set(",.!?;:\"()")  # punctuation that untokenized text leaves on its words


class ClassificationTask(ClassificationSpec, TaskBase):
    """The work of the task that ``ClassificationSpec`` declares (its settings and ``rnnkit train`` help)."""

    vocabularies = {"vocab.json": "vocab"}
    tokenizers = {"tokenizer.json": "tokenizer"}
    names = {"labels.json": "labels"}
    averages_runs = True  # --ensemble: class probabilities averaged over runs (ensemble_probabilities)
    initialised_from = ("word_vectors", "init_from")  # (--lm-features are read at every use: not among them)
    criterion = "1 - validation accuracy"

    def __init__(self, data: ClassificationDataConfig, tokenizer, vocab: Vocabulary, labels: list[str], splits=None):
        self.data = data
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.labels = labels
        self.label_ids = {label: i for i, label in enumerate(labels)}
        self.splits: dict[str, list[LabeledText]] = splits or {}
        self._encoded: dict[str, list] = {}  # a split's examples as ids, encoded once
        self._class_weights: torch.Tensor | None = None  # computed once, kept on the training device
        self.word_vectors = None  # rnnkit.data.word_vectors.WordVectors, read by prepare when asked
        self.pretrained = None  # rnnkit.tasks.pretrained.PretrainedEncoder or TrainedClassifier, read by prepare when asked
        self.lm_features = LMFeatures.read(data.lm_features) if data.lm_features else None  # frozen, from their runs

    @classmethod
    def resumed_data(cls, run_path, split: dict) -> dict:
        """A classifier started from a classifier run took that run's vocabulary and labels, which its
        own vocab.json and labels.json now hold: a resume reads them there, as ``--init-from`` the run
        itself, and not from the run it started from (which may have moved or changed since)."""
        started = split.get("init_from")
        return {"init_from": str(run_path)} if isinstance(started, dict) and started.get("kind") == "classifier" else {}

    @property
    def starts_trained(self) -> bool:
        """Started from a trained classifier run (``--init-from``): its weights are a candidate for the best."""
        return self.pretrained is not None and self.pretrained.starts_trained

    def class_weights(self, device="cpu") -> torch.Tensor | None:
        """With ``balanced``: w_c = N / (C n_c) over the training examples (their mean weight is 1),
        so that each class weighs alike in the loss. Phrases of a treebank are half neutral while
        whole sentences are not: the weights undo that skew."""
        if self.data.class_weights != "balanced":
            return None
        if self._class_weights is None:
            counts = torch.bincount(torch.tensor([example[1] for example in self._examples("train")]), minlength=len(self.labels)).double()
            self._class_weights = (counts.sum() / (len(self.labels) * counts.clamp(min=1))).float()
        self._class_weights = self._class_weights.to(device)  # a no-op after the first batch
        return self._class_weights

    # -- configuration ---------------------------------------------------------------------------------
    def model_config(self, values: dict) -> dict:
        values = sized_from(self.word_vectors, values, "embedding_size")
        values = self.pretrained.model_values(values) if self.pretrained is not None else values
        return self._model_config({"vocab_size": len(self.vocab), "num_classes": len(self.labels)} | lm_features_size(self.lm_features), values)

    def initialise(self, model) -> None:
        """The embedding rows of the words ``--word-vectors`` holds; the encoder or classifier of ``--init-from``."""
        if self.word_vectors is not None:
            initialise_rows(model.embedding.weight, self.word_vectors)
        if self.pretrained is not None:
            self.pretrained.initialise(model)

    # -- building ---------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: ClassificationDataConfig, seed: int = 0):
        data.check()
        if "phrases" in getattr(data, "given", ()):  # it chooses among a treebank's phrases: of other files it would change nothing
            formats = {str(path): data.format if data.format != "auto" else detect_format(path) for path in data.train if str(path) != "-"}
            other = next((f"{path} is a {fmt} file" for path, fmt in formats.items() if fmt != "ptb-trees"), None)
            if other:
                raise UsageError(f"--{'' if data.phrases else 'no-'}phrases chooses the phrases of PTB trees, and {other}: "
                                 "it would do nothing here; leave it out")
        splits = cls.read_splits(data)
        tokenizer = make_tokenizer({"kind": data.level, "lowercase": data.lowercase})
        tokens = [tokenizer.tokenize(item.text) for item in splits["train"]]
        vocab = Vocabulary.build(tokens, min_count=data.min_count)
        if data.level == "whitespace":  # for tokenized text (SST, PTB); raw text keeps "it," and "it." apart from "it"
            words = [t for line in tokens[:5_000] for t in line]
            glued = [t for t in words if len(t) > 1 and (t[-1] in GLUED or t[0] in GLUED)]
            if words and len(glued) >= 0.05 * len(words):
                print(f"rnnkit: note: {len(glued) / len(words):.0%} of the training words carry punctuation ({', '.join(map(repr, glued[:5]))} ...): "
                      "--level whitespace reads text tokenized already; --level word cuts punctuation off raw text", file=sys.stderr, flush=True)  # fmt: skip
        labels = _label_order({item.label for item in splits["train"]})
        files = ", ".join(map(str, data.train))
        pretrained = read_start(data.init_from, vocab.tokens, tokenizer.kind, data.lowercase) if data.init_from else None
        if pretrained is not None:  # a classifier's head has a row per label of its own, in its order, and an embedding row per word
            labels, vocab = pretrained.own_labels(labels, files), pretrained.own_vocabulary(vocab)
        if len(labels) < 2:
            raise DataError(f"{files}: every training example has the label {labels[0]!r}; a classifier needs at least two classes")
        n, texts = len(splits["train"]), len({item.text for item in splits["train"]})
        if texts == 1 and n > 1:  # every example the same text: whatever the labels, nothing tells the classes apart
            raise DataError(f"{files}: all {n:,} training examples have the same text {splits['train'][0].text[:40]!r}; "
                            "a classifier learns nothing from it")
        # a class per text or so: the columns swapped? (a small file too: nearly every example its own label, the "texts" repeating)
        many = len(labels) > max(MOST_LABELS_PER_EXAMPLE * n, 20) or (n >= 6 and len(labels) >= 0.8 * n and texts <= n // 2)
        if many and not all(str(path) != "-" and names_its_labels(path, data.format, data.text_column, data.label_column) for path in data.train):
            raise DataError(f"{files}: {len(labels)} different labels in {len(splits['train'])} training examples (and {texts} different texts): "
                            "the labels look like texts; rnnkit reads a tsv file as label<TAB>text (a header row naming the columns 'text' and 'label' may give them in any order)")  # fmt: skip
        _one_label_spelled_apart(files, labels)
        _several_labels_in_one(files, labels)
        for name, items in splits.items():
            unknown = {item.label for item in items} - set(labels)
            if unknown:
                raise DataError(f"{getattr(data, name, name)}: labels not seen in training: {', '.join(sorted(unknown))}{spelled_otherwise(unknown, labels)}")
        record = {
            "train_files": list(data.train), "examples": {k: len(v) for k, v in splits.items()}, "labels": labels,
            "train_fingerprint": fingerprint([f"{i.label}\t{i.text}" for i in splits["train"]]),
        }  # fmt: skip
        task = cls(data, tokenizer, vocab, labels, splits)
        task.seed = seed
        if data.word_vectors:
            task.word_vectors = read_word_vectors(data.word_vectors, vocab.tokens)
            print(task.word_vectors.describe(len(SPECIALS)), file=sys.stderr, flush=True)
            record["word_vectors"] = task.word_vectors.record(len(SPECIALS))
        if pretrained is not None:
            task.pretrained = pretrained
            if "init_from" in getattr(data, "given", {"init_from"}):  # the user's start, not a resume's reading of the run's own files
                print(pretrained.describe(), file=sys.stderr, flush=True)
            record["init_from"] = pretrained.record()
        record |= record_lm_features(task.lm_features, data)
        return task, record

    @classmethod
    def read_file(cls, data: ClassificationDataConfig, path: str, train: bool = False) -> list[LabeledText]:
        """A labelled file; PTB trees give every labelled phrase for training (``phrases``), whole
        sentences otherwise. Each text is one sequence: one of millions of tokens is refused with its
        figure, for training and ``rnnkit eval`` alike."""
        # held-out and eval files without column names are read by position: the names are the training file's;
        # those of a run trained on .csv files are csv whatever their name (va.txt, standard input), where
        # read as tsv by name their first row was "expected 'label<TAB>text', found no tab"
        trained = [data.train] if isinstance(data.train, str) else data.train
        usual = "csv" if not train and data.format == "auto" and trained and all(map(named_csv, trained)) else "tsv"
        items = read_labeled(path, data.format, data.text_column, data.label_column, data.phrases and train, positional=not train, usual=usual)
        tokenize = make_tokenizer({"kind": data.level, "lowercase": data.lowercase}).tokenize
        check_text_lengths((item.text for item in items), tokenize, str(path), "; is a line break missing between texts?")
        return items


    # -- batches ----------------------------------------------------------------------------------------
    def encode(self, text: str) -> list[int]:
        ids = self.vocab.encode(self.tokenizer.tokenize(text))
        return ids or [self.vocab.unk_id]

    def _encode_examples(self, items: list[LabeledText]) -> list[tuple]:
        """(ids, label) of each item; (ids, label, words) with ``--lm-features``, whose models read the words."""
        if self.lm_features is not None:
            return [(self.encode(item.text), self.label_ids[item.label], self.lm_words(item.text)) for item in items]
        return [(self.encode(item.text), self.label_ids[item.label]) for item in items]

    def _examples(self, split: str) -> list[tuple[list[int], int]]:
        if split not in self._encoded:
            self._encoded[split] = self._encode_examples(self.splits[split])
        return self._encoded[split]

    @staticmethod
    def collate(examples) -> tuple[TokenBatch, torch.Tensor]:
        batch = pad_sequences([example[0] for example in examples])
        batch.words = [example[2] for example in examples] if len(examples[0]) > 2 else None  # --lm-features
        return batch, torch.tensor([example[1] for example in examples])

    def lm_words(self, text: str, typed: bool = False) -> list[str]:
        """The tokens of ``text`` in their case, for the language models of ``--lm-features`` (each reads
        them as it read its training text), cut as the classifier cuts them; [""] for no token (one <UNK>)."""
        tokens = self.typed_tokens(text) if typed else self.tokenizer.tokenize(text)
        cased = make_tokenizer({**self.tokenizer.config(), "lowercase": False})
        words = typed_tokens(cased, self.vocab, text) if typed else cased.tokenize(text)
        return (words if len(words) == len(tokens) else tokens) or [""]  # a lowercasing that changes the cut: the classifier's

    def lm_inputs(self, words: list[list[str]] | None, device) -> dict:
        """The classifier's keyword for the frozen language models' features of ``words`` (``--lm-features``): (T, B, F)."""
        if self.lm_features is None:
            return {}
        self.before_training()  # done already when rnnkit.runs started the training; a task used on its own
        return {"lm_features": self.lm_features.features(words, device)}

    def lm_sentences(self) -> list[list[str]]:
        held_out = [self.lm_words(item.text) for name, items in self.splits.items() if name != "train" for item in items]
        return [example[2] for example in self._examples("train")] + held_out if "train" in self.splits else held_out

    def batches_of(self, items: list[LabeledText], train: bool):
        examples = self._examples("train") if train and items is self.splits.get("train") else self._encode_examples(items)
        size = self.data.batch_size if train else self.data.eval_batch_size
        return SentenceBatches(examples, size, seed=self.seed, shuffle=train, collate=self.collate, length=lambda e: len(e[0]))

    # -- the trainer's Task protocol ----------------------------------------------------------------------
    def loss(self, model, batch, device):
        tokens, labels = batch
        logits = model(tokens.tokens.to(device), tokens.lengths, **self.lm_inputs(tokens.words, device)).logits  # (B, C)
        return F.cross_entropy(logits.float(), labels.to(device), weight=self.class_weights(device), reduction="sum"), len(labels)

    def typed_tokens(self, text: str) -> list[str]:
        """The tokens of a typed text, cut as the training text was (``base.typed_tokens``), and
        without white space at its ends, as the training files' texts were read (a character run
        would read a trailing space as a character it never saw there)."""
        return typed_tokens(self.tokenizer, self.vocab, text.strip())

    @torch.no_grad()
    def probabilities(self, model, texts: list[str], device, typed: bool = False) -> torch.Tensor:
        """Class probabilities (N, K). ``typed``: the texts are as a user typed them, not as the
        training files hold them (tokenized the way the training text was, see ``typed_tokens``)."""
        model.eval()
        encode = (lambda t: self.vocab.encode(self.typed_tokens(t)) or [self.vocab.unk_id]) if typed else self.encode
        out = []
        size = self.data.eval_batch_size
        for i in range(0, len(texts), size):
            batch = pad_sequences([encode(t) for t in texts[i : i + size]])
            lm = self.lm_inputs([self.lm_words(t, typed) for t in texts[i : i + size]] if self.lm_features else None, device)
            out.append(finite_outputs(model(batch.tokens.to(device), batch.lengths, **lm).logits).float().softmax(-1).cpu())
        return torch.cat(out)

    @torch.no_grad()
    def evaluate_examples(self, model, items: list[LabeledText], device) -> dict:
        model.eval()
        total, gold, predicted = 0.0, [], []
        for tokens, labels in self.batches_of(items, False).iterate(0):
            logits = model(tokens.tokens.to(device), tokens.lengths, **self.lm_inputs(tokens.words, device)).logits.float()  # (B, C)
            total += float(F.cross_entropy(logits, labels.to(device), reduction="sum"))
            gold += labels.tolist()
            predicted += logits.argmax(-1).tolist()
        scores = classification_scores(gold, predicted, self.labels)
        return {"loss": total / max(len(gold), 1), "criterion": 1 - scores["accuracy"], **scores}

    def describe(self, result: dict) -> str:
        text = f"accuracy {percent(result['accuracy'])}, macro-F1 {percent(result['macro_f1'])}"
        if "mae" in result:
            text += f", mean absolute error {result['mae']:.3f}"
        return text + f", loss {result['loss']:.4f} ({result['count']} examples)"

    eval_picture = "its confusion matrix"

    def save_pictures(self, result: dict, directory, name: str) -> dict:
        """The confusion matrix of an evaluation as ``confusion_<name>.png``."""
        from ..plots import plot_confusion

        path = Path(directory) / f"confusion_{name}.png"
        title = f"{name}: accuracy {percent(result['accuracy'], 1)}"
        return {"confusion_png": str(path)} if plot_confusion(result["confusion"], self.labels, path, title) else {}

    # -- for the CLI -----------------------------------------------------------------------------------------
    def evaluate_file(self, model, path: str, device, ensemble: Sequence = ()) -> dict:
        """Scores on a labelled file; with ``ensemble`` ((task, model) pairs of other runs), of the
        class probabilities averaged over this model and those."""
        items = self.read_file(self.data, path)
        unknown = {item.label for item in items} - set(self.labels)
        if unknown:
            raise DataError(f"{path}: labels the model does not know: {', '.join(sorted(unknown))}{spelled_otherwise(unknown, self.labels)}")
        if ensemble:
            probs = self.ensemble_probabilities(model, [item.text for item in items], device, ensemble)  # (N, K)
            gold = torch.tensor([self.label_ids[item.label] for item in items])
            loss = float(F.nll_loss(probs.clamp_min(1e-12).log(), gold, reduction="mean")) if items else 0.0
            scores = classification_scores(gold.tolist(), probs.argmax(-1).tolist(), self.labels)
            return {"loss": loss, "criterion": 1 - scores["accuracy"], **scores, "ensemble": 1 + len(ensemble)}
        return self.evaluate_examples(model, items, device)

    def ensemble_probabilities(self, model, texts: list[str], device, ensemble: Sequence, typed: bool = False) -> torch.Tensor:
        """Class probabilities (N, K) averaged over this model and the (task, model) pairs of
        ``ensemble``. Each run reads the texts with its own vocabulary; the labels must agree."""
        self.check_ensemble(model, ensemble)  # every run of an ensemble is a classifier's (cli.open_ensemble)
        total = self.probabilities(model, texts, device, typed)
        for task, other in ensemble:
            total += task.probabilities(other, texts, device, typed)
        return total / (1 + len(ensemble))

    def ensemble_mismatch(self, model, other_task, other_model) -> str | None:
        """Runs join when they have the same labels in the same order."""
        return None if other_task.labels == self.labels else f"its labels {other_task.labels} differ from the first run's {self.labels}"

    def inspect_forward(self, model, text: str, device):
        """The tokens of ``text``; the class probabilities go with the last token."""
        tokens = tokens_to_inspect(self.typed_tokens(text))  # cut as rnnkit classify cuts it: what is inspected is what is classified
        lm = self.lm_inputs([self.lm_words(text, typed=True)] if self.lm_features else None, device)
        probs = model(torch.tensor(self.vocab.encode(tokens), device=device)[:, None], **lm).logits[0].float().softmax(-1)  # (C,)
        classes = sorted(zip(self.labels, probs.tolist()), key=lambda x: -x[1])
        return tokens, [None] * (len(tokens) - 1) + [[(label, round(p, 4)) for label, p in classes]]

    def classify(self, model, texts: list[str], device, ensemble: Sequence = ()) -> list[dict]:
        """For each typed text: the label, the class probabilities, and ``unknown``, the words the
        vocabulary (with ``ensemble``: every run's) does not hold (read as ``<UNK>``), as typed."""
        probs = self.ensemble_probabilities(model, texts, device, ensemble, typed=True)
        vocabularies = [self.vocab, *(task.vocab for task, _ in ensemble)]  # unknown: to every run
        return [
            {
                "text": text, "label": self.labels[int(p.argmax())],
                "probabilities": {label: round(float(q), 4) for label, q in zip(self.labels, p)},
                "unknown": list(dict.fromkeys([*(t for t in self.typed_tokens(text) if all(t not in vocab for vocab in vocabularies)),
                                               *self.tokenizer.unseen_characters(text)])),  # a BPE run's <UNK>: the characters typed
            }
            for text, p in zip(texts, probs)
        ]  # fmt: skip

