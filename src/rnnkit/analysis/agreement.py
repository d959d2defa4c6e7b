"""Subject-verb agreement over distance: "The cat, which already ate ..., was full." against "The
cats, which ate ..., were full."

Generated sentences put k words between the subject and its verb: prepositional phrases and
relative clauses, and adverbs. Each noun between has the other number (an attractor) or the same,
by a coin flip: were every one an attractor, "the opposite of the last noun" would answer without
remembering the subject. A model reads the sentence up to the verb and says whether the verb is
singular (was) or plural (were). The labels are right by construction: the number of the subject
decides, whatever stands between.

``run_experiment`` trains a one-direction classifier for each cell at (nearly) equal parameter
counts and reports accuracy as a function of k, as a table and a plot.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..data.batches import pad_sequences
from ..errors import UsageError
from . import progress
from ..metrics import percent
from ..models.classifier import Classifier
from ..plots import new_figure, save_figure

NOUNS = ["cat", "dog", "boy", "girl", "author", "pilot", "farmer", "teacher", "doctor", "singer", "king", "student", "horse", "bird", "friend", "player"]
PLURAL = {noun: noun + "s" for noun in NOUNS}
ADJECTIVES = ["old", "young", "tall", "happy", "quiet", "small"]
ADVERBS = ["already", "often", "never", "clearly", "sometimes", "really"]
PREPOSITIONS = ["near", "behind", "with", "beside", "like", "under"]
TRANSITIVE = ["chased", "saw", "liked", "helped", "met", "followed"]
VERBS = ("was", "were")  # singular, plural


@dataclass
class AgreementExample:
    words: list[str]  # the sentence up to (not including) the verb
    plural: bool  # the subject's number, which the verb must follow
    distance: int  # words between the subject and the verb
    subject: int  # index of the subject noun in ``words``
    attractors: list[int]  # indices of the nouns of the other number between them

    @property
    def verb(self) -> str:
        return VERBS[self.plural]


def _noun_phrase(rng: random.Random, plural: bool) -> list[str]:
    noun = rng.choice(NOUNS)
    return ["the", PLURAL[noun] if plural else noun]


def _filler(rng: random.Random, subject_plural: bool, budget: int) -> list[list[str]]:
    """Chunks of ``budget`` words in total: phrases whose noun has the other number (an attractor)
    or the same, half and half, and adverbs."""
    chunks = []
    while budget > 0:
        options = []
        if budget >= 3:
            options.append("preposition")  # near the dogs
        if budget >= 4:
            options.append("relative")  # that the dogs chased
        options.append("adverb")
        kind = rng.choice(options)
        if kind == "preposition":
            chunk = [rng.choice(PREPOSITIONS), *_noun_phrase(rng, subject_plural != (rng.random() < 0.5))]
        elif kind == "relative":
            chunk = ["that", *_noun_phrase(rng, subject_plural != (rng.random() < 0.5)), rng.choice(TRANSITIVE)]
        else:
            chunk = [rng.choice(ADVERBS)]
        chunks.append(chunk)
        budget -= len(chunk)
    return chunks


def generate(n: int, max_distance: int, seed: int, distance: int | None = None, min_distance: int = 0) -> list[AgreementExample]:
    """``n`` examples with distances uniform in min_distance..max_distance (or all equal to ``distance``)."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        plural = rng.random() < 0.5
        k = distance if distance is not None else rng.randint(min_distance, max_distance)
        words = ["the"] + ([rng.choice(ADJECTIVES)] if rng.random() < 0.3 else [])
        noun = rng.choice(NOUNS)
        words.append(PLURAL[noun] if plural else noun)
        subject = len(words) - 1
        attractors = []
        for chunk in _filler(rng, plural, k):
            for word in chunk:
                if (word in PLURAL.values()) != plural and (word in PLURAL.values() or word in NOUNS):
                    attractors.append(len(words))
                words.append(word)
        out.append(AgreementExample(words, plural, len(words) - 1 - subject, subject, attractors))
    return out


def parameters_for(cell: str, input_size: int, hidden: int) -> int:
    blocks = {"rnn": 1, "gru-simple": 2, "gru": 3, "gru-cudnn": 3, "lstm": 4}[cell]
    return blocks * hidden * (hidden + input_size + 1) + (hidden if cell == "gru-cudnn" else 0)


def hidden_for_budget(cell: str, input_size: int, budget: int) -> int:
    """The hidden size whose recurrent parameter count comes closest to ``budget`` (searched up to
    the first size past it, so that a large budget is matched too, not capped)."""
    top = 2
    while parameters_for(cell, input_size, top) < budget:
        top *= 2
    return min(range(1, top + 1), key=lambda h: abs(parameters_for(cell, input_size, h) - budget))  # from 1: --hidden-size 1 is the LSTM's own


def run_experiment(cells=("rnn", "gru", "lstm"), max_distance: int = 24, train_size: int = 20000, test_size: int = 400, steps: int = 1500, budget_hidden: int = 48, seed: int = 0, train_max_distance: int | None = None, train_min_distance: int = 8, log=print) -> dict:
    """Accuracy by distance 0..max_distance for each cell, trained on distances
    train_min_distance..train_max_distance (default: 8 up to the longest tested). Training only on long
    distances asks whether a cell can *learn* a dependency whose gradient must cross many steps (the
    defaults: docs/benchmarks.md's figure, where the RNN stays at chance); training on every
    distance (``train_min_distance=0``), all three cells reach 100 %: short examples teach the RNN
    which word to keep; training only on short ones, whether what it learned holds beyond what it saw.
    Returns {"accuracy": {cell: {k: acc}}, "hidden": ..., "parameters": ..., "train_max_distance": ...}."""
    vocab = ["<PAD>", "<UNK>", "<EOS>", "the", *NOUNS, *PLURAL.values(), *ADJECTIVES, *ADVERBS, *PREPOSITIONS, "that", *TRANSITIVE]
    ids = {w: i for i, w in enumerate(vocab)}
    embedding = 32
    budget = parameters_for("lstm", embedding, budget_hidden)
    train_max_distance = max_distance if train_max_distance is None else train_max_distance
    if train_min_distance > train_max_distance:
        given = "--train-max-distance" if train_max_distance != max_distance else "--max-distance"
        raise UsageError(f"--train-min-distance {train_min_distance} is above {given} {train_max_distance}: no distance to train on")
    train = generate(train_size, train_max_distance, seed, min_distance=train_min_distance)
    tests = {k: generate(test_size, max_distance, seed + 1000 + k, distance=k) for k in range(max_distance + 1)}
    results: dict = {"accuracy": {}, "hidden": {}, "parameters": {}, "seconds": {}, "train_distances": [train_min_distance, train_max_distance]}
    for cell in cells:
        hidden = hidden_for_budget(cell, embedding, budget)
        torch.manual_seed(seed)
        model = Classifier(len(vocab), 2, embedding_size=embedding, cell=cell, hidden_size=hidden, bidirectional=False, pooling="last", dropout=0.0)
        recurrent_params = sum(p.numel() for p in model.recurrent.parameters())
        optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
        rng = random.Random(seed)
        started = time.perf_counter()
        for step in progress(steps, f"agreement: {cell}"):
            batch = rng.sample(train, 64)
            tokens = pad_sequences([[ids[w] for w in e.words] for e in batch])
            loss = F.cross_entropy(model(tokens.tokens, tokens.lengths).logits, torch.tensor([int(e.plural) for e in batch]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
        model.eval()
        accuracy = {}
        with torch.no_grad():
            for k, examples in tests.items():
                tokens = pad_sequences([[ids[w] for w in e.words] for e in examples])
                predicted = model(tokens.tokens, tokens.lengths).logits.argmax(-1)  # (B,)
                accuracy[k] = float((predicted == torch.tensor([int(e.plural) for e in examples])).float().mean())
        results["accuracy"][cell] = accuracy
        results["hidden"][cell] = hidden
        results["parameters"][cell] = recurrent_params
        results["seconds"][cell] = round(time.perf_counter() - started, 1)
        log(f"{cell:5s} hidden {hidden:3d}, {recurrent_params} recurrent parameters: " + ", ".join(f"k={k} {percent(accuracy[k], 1)}" for k in sorted(accuracy)))
    return results


def markdown_table(results: dict) -> str:
    cells = list(results["accuracy"])
    ks = sorted(next(iter(results["accuracy"].values())))
    lines = ["| k | " + " | ".join(f"{c} ({results['parameters'][c]} params)" for c in cells) + " |", "|---:|" + "---:|" * len(cells)]
    for k in ks:
        lines.append(f"| {k} | " + " | ".join(percent(results['accuracy'][c][k], 1) for c in cells) + " |")
    return "\n".join(lines)


def plot_accuracy(results: dict, path) -> bool:
    figure, axes = new_figure()
    if figure is None:
        return False
    for cell, accuracy in results["accuracy"].items():
        ks = sorted(accuracy)
        axes.plot(ks, [100 * accuracy[k] for k in ks], "o-", label=f"{cell} ({results['parameters'][cell]} params)", markersize=3)
    axes.axhline(50, color="grey", linewidth=0.8, linestyle=":")  # chance
    low, high = results.get("train_distances", (None, None))
    if low is not None:
        axes.axvspan(low, high, color="grey", alpha=0.08, label=f"trained on k = {low}..{high}")
    axes.set_ylim(40, 101)
    return save_figure(figure, path, xlabel="k: words between the subject and its verb", ylabel="agreement accuracy (%)",
                       legend=True, grid="major")  # fmt: skip

