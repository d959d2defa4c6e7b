"""Metrics: classification (accuracy, macro-F1, mean absolute error, confusion matrix) and
entity-level tagging scores (precision, recall and F1 per type and overall, with seqeval)."""

from __future__ import annotations

import math
import re
import unicodedata
import warnings
from collections.abc import Sequence

from .errors import require

# the entries of an evaluation (and of summary.json, as test_<name>) that are fractions of 1
SHARES = frozenset({"accuracy", "macro_f1", "f1", "precision", "recall", "exact_match"})


PERPLEXITY_CAP = math.exp(50)  # far beyond any model that learned something: e^50 is about 5.2e21


def perplexity(loss: float) -> float:
    """exp(loss) for a loss in nats per token, capped at ``PERPLEXITY_CAP`` so that a diverged
    model's figure stays a finite number (strict JSON, CSV); ``shown_perplexity`` prints it."""
    return math.exp(min(loss, 50))


def shown_perplexity(value: float) -> str:
    """A perplexity as the console shows it: two decimals, or, at the cap, that it is one (a printed
    5184705528587072045056.00 would read as a measured figure)."""
    return f"{value:.2f}" if value < PERPLEXITY_CAP else f"over {PERPLEXITY_CAP:.2g} (capped at e^50: the model diverged)"


def percent(share: float, digits: int = 2) -> str:
    """A share as the console shows it: ``0.4575`` -> ``"45.75 %"``. Results, ``--json`` and
    ``summary.json`` keep the fraction (0.4575); everything printed for a person goes through here,
    so that a printed share always carries its sign."""
    return f"{100 * share:.{digits}f} %"


def confusion_matrix(gold: Sequence[int], predicted: Sequence[int], num_classes: int) -> list[list[int]]:
    """matrix[g][p] = how many examples of class g were predicted as p."""
    matrix = [[0] * num_classes for _ in range(num_classes)]
    for g, p in zip(gold, predicted):
        matrix[g][p] += 1
    return matrix


def classification_scores(gold: Sequence[int], predicted: Sequence[int], labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 (the unweighted mean of the F1 of the classes that occur, in the gold
    labels or the predictions, as scikit-learn's ``f1_score(average="macro")``: a class a file
    holds no example of, and that is never predicted, has no F1, and a perfect answer scores 100 %),
    per-class F1 (those classes only), the confusion matrix, and, when every label is a number
    (ratings), the mean absolute error in label units."""
    n, k = len(gold), len(labels)
    matrix = confusion_matrix(gold, predicted, k)
    f1s = {}
    for c in range(k):
        tp = matrix[c][c]
        fp = sum(matrix[g][c] for g in range(k)) - tp
        fn = sum(matrix[c]) - tp
        if tp + fp + fn:  # the class occurs
            f1s[labels[c]] = 2 * tp / (2 * tp + fp + fn)
    scores = {
        "accuracy": sum(g == p for g, p in zip(gold, predicted)) / max(n, 1),
        "macro_f1": sum(f1s.values()) / max(len(f1s), 1),
        "f1_per_class": f1s,
        "confusion": matrix,
        "count": n,
    }
    values = [label_number(label) for label in labels]
    if None in values:  # not ratings: no distance between classes
        return scores
    scores["mae"] = sum(abs(values[g] - values[p]) for g, p in zip(gold, predicted)) / max(n, 1)
    return scores


NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def label_number(label: str) -> float | None:
    """The rating a label writes as a decimal number ("4", "2.5", "-1"), or None: Python's float()
    also reads "nan", "inf", "1_0" and "1e400" (infinite), which as ratings gave a NaN or infinite
    mean absolute error (pandas writes a missing label as "nan")."""
    if not NUMBER.fullmatch(label.strip()):
        return None
    value = float(label)
    return value if math.isfinite(value) else None


def label_key(label: str):
    """What makes two labels one class: the same number ("2", "2.0"), or the same words whatever
    their case and the spaces between them ("Very Positive", "very  positive", "very\u00a0positive",
    NFKC-normalised). Labels with one key and two spellings are one class written two ways."""
    number = label_number(label)
    return number if number is not None else " ".join(unicodedata.normalize("NFKC", label).casefold().split())


def spelled_apart(names) -> list[str] | None:
    """The first group of ``names`` that are one name written several ways (``label_key``), or None."""
    spellings: dict[object, list[str]] = {}
    for name in names:
        spellings.setdefault(label_key(name), []).append(name)
    return next((found for found in spellings.values() if len(found) > 1), None)


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict:
    """Entity-level precision, recall and F1, overall and per type, with seqeval in strict IOB2
    mode (an entity counts only if its type and both ends are right). Tags must be IOB2."""
    seqeval = require("seqeval.metrics", extra="tagging", purpose="tagging metrics are computed")
    from seqeval.scheme import IOB2

    with warnings.catch_warnings():  # numpy's "Mean of empty slice" when no entity is in gold or predicted: scores 0, said by them
        warnings.simplefilter("ignore", RuntimeWarning)
        report = seqeval.classification_report(list(map(list, gold)), list(map(list, predicted)), mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    overall = report["micro avg"]
    per_type = {
        name: {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": int(r["support"])}
        for name, r in report.items()
        if name not in ("micro avg", "macro avg", "weighted avg")
    }
    return {"precision": overall["precision"], "recall": overall["recall"], "f1": overall["f1-score"], "per_type": per_type}
