"""Shares as a person reads them and as files keep them: percentages with their sign on the console
(the trainer's lines, the summary, ``rnnkit eval``, ``classify``, every task's ``describe``), fractions
in results, ``--json`` and summary.json (which benchmarks/*.py read)."""

from __future__ import annotations

import json
import math
import re

import pytest

from rnnkit.cli import main
from rnnkit.metrics import SHARES, percent
from rnnkit.tasks import TASKS

SHARE = 0.4575  # a value no other figure of the fake result has, so each place it is printed is found
BARE = re.compile(r"(?<![\d.])(0\.4575|0\.46|45\.75|45\.8)(?! %)")  # the share without its % sign


def test_percent_shows_a_share_with_its_sign():
    assert percent(SHARE) == "45.75 %" and percent(1.0, 1) == "100.0 %" and percent(0.0, 0) == "0 %"


def test_every_task_describes_its_shares_as_percentages():
    result = {name: SHARE for name in SHARES} | {"loss": 1.25, "perplexity": 3.5, "count": 7, "bleu": 12.5, "chrf": 30.25,
                                                  "nll_per_step": 1.25, "mae": 0.125}  # fmt: skip
    result["per_type"] = {"PER": {"precision": SHARE, "recall": SHARE, "f1": SHARE, "support": 3}}
    shown = 0
    for kind, task_class in TASKS.items():
        task = task_class.__new__(task_class)  # describe and details read only the result
        for line in [task.describe(result), *task.details(result)]:
            assert not BARE.search(line), (kind, line)
            shown += line.count("45.75 %")
    assert shown >= 9  # classifier 2, tagger 3 and 3 in its table, translation 1


def test_printed_shares_carry_percent_and_summary_json_keeps_fractions(tmp_path, capsys):
    data = tmp_path / "data.tsv"
    data.write_text("".join(f"{label}\t{text}\n" for label, text in [("pos", "a fine film"), ("neg", "a dull film"), ("pos", "good"), ("neg", "bad")] * 3))
    run = tmp_path / "run"
    code = main(["train", "classifier", str(data), "--valid", str(data), "--test", str(data), "--run", str(run), "--max-steps", "2",
                 "--eval-every", "1", "--hidden-size", "4", "--embedding-size", "4", "--batch-size", "4", "--no-progress"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads((run / "summary.json").read_text())
    for key in ("test_accuracy", "test_macro_f1"):
        assert 0 <= summary[key] <= 1  # a fraction in the file
        assert f"{key} {percent(summary[key])}" in out  # a percentage on the console
    assert re.search(r"valid accuracy \d+\.\d\d %, macro-F1 \d+\.\d\d %", err) and re.search(r"test accuracy \d+\.\d\d %", err)
    assert main(["eval", str(run), str(data)]) == 0
    assert re.search(r"accuracy \d+\.\d\d %, macro-F1 \d+\.\d\d %", capsys.readouterr().out)
    assert main(["eval", str(run), str(data), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["accuracy"] == summary["test_accuracy"]
    assert main(["classify", str(run), "a fine film"]) == 0
    probabilities = capsys.readouterr().out.strip().split("\t")[2]
    assert re.fullmatch(r"(neg|pos): \d+\.\d %  (neg|pos): \d+\.\d %", probabilities), probabilities


def test_a_capped_perplexity_is_shown_as_capped():
    """perplexity() keeps a diverged model's figure finite (strict JSON) at e^50; printed, it must
    not read as a measured 5184705528587072045056.00."""
    from rnnkit.metrics import perplexity, shown_perplexity

    assert shown_perplexity(perplexity(2.0)) == "7.39" and shown_perplexity(perplexity(49.0)) == f"{math.exp(49):.2f}"
    assert shown_perplexity(perplexity(4e30)) == "over 5.2e+21 (capped at e^50: the model diverged)"


def test_entity_scores_without_any_entity_are_zero_without_numpy_warnings():
    """A validation file with no entities (or a tagger that predicts none) scored 0 with numpy's
    "Mean of empty slice" RuntimeWarnings printed to the user."""
    import warnings

    pytest.importorskip("seqeval")
    from rnnkit.metrics import entity_scores

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert entity_scores([["O", "O"]], [["O", "O"]])["f1"] == 0
        assert entity_scores([["O", "O"]], [["B-PER", "O"]])["per_type"]["PER"]["support"] == 0
