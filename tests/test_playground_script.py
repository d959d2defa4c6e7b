"""The playground's script (serve/static/app.js) under node, with a stand-in for the page and the
server (tests/fixtures/playground_harness.js): what it sends and what it marks, where no browser is
installed (test_playground.py drives a real one when there is)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
pytestmark = pytest.mark.skipif(NODE is None, reason="needs node")
SCRIPT = Path(__file__).parents[1] / "src" / "rnnkit" / "serve" / "static" / "app.js"
HARNESS = Path(__file__).parent / "fixtures" / "playground_harness.js"
MODELS = {"models": [{"name": "stars", "task": "classifier", "model": {"cell": "lstm", "hidden_size": 8}, "verbs": {"classify": "..."}},
                     {"name": "chars", "task": "lm", "model": {"cell": "gru", "hidden_size": 8}, "verbs": {"score": "...", "generate": "..."}}]}  # fmt: skip


def page(query: str, answers: dict) -> dict:
    done = subprocess.run([NODE, str(HARNESS), str(SCRIPT), query, json.dumps({"/api/models": MODELS, **answers})],
                          capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    return json.loads(done.stdout)


def test_the_best_bar_is_the_most_likely_class_even_for_number_labels():
    """JavaScript lists integer-like keys ("1" ... "5") in ascending order: the page marked SST-5's
    "1" as the most likely class whatever the model said."""
    answer = {"results": [{"label": "4", "text": "good film", "probabilities": {"4": 0.305, "5": 0.259, "3": 0.1627, "2": 0.1385, "1": 0.1348}}]}
    shown = page("?model=stars&verb=classify&text=good%20film&run=1", {"/api/classify": answer})
    assert shown["state"] == "done" and shown["best"] == ["4"]


def test_lines_are_sent_as_typed_and_a_link_names_only_real_verbs_and_models():
    """The page trimmed each line (a character model reads its spaces); ?verb=toString passed the
    check ("in" finds an object's own methods) and ?model=nosuch showed an empty page."""
    shown = page("?model=chars&verb=score&text=%20%20ab%20%0A%0A&run=1", {"/api/score": {"results": []}})
    assert shown["sent"] == [{"path": "/api/score", "body": {"model": "chars", "texts": ["  ab "]}}]
    for verb in ("toString", "__proto__", "constructor"):
        shown = page(f"?model=chars&verb={verb}&text=ab&run=1", {})
        assert shown["state"] == "error" and f'does not answer "{verb}"' in shown["text"] and not shown["sent"]
    shown = page("?model=nosuch&verb=score&text=ab&run=1", {})
    assert shown["state"] == "error" and 'no model named "nosuch"' in shown["text"] and "stars, chars" in shown["text"]


def test_a_translation_is_asked_with_the_runs_own_beam_unless_one_is_typed():
    """The page's beam field held 5, always sent: a run trained with --beam 1 or 8 decoded otherwise
    in the playground than with rnnkit translate RUN or the API without a beam."""
    html = (SCRIPT.parent / "index.html").read_text()
    field = next(line for line in html.splitlines() if 'id="beam"' in line)
    assert "value=" not in field
    models = {"models": [{"name": "pairs", "task": "seq2seq", "model": {"cell": "gru", "hidden_size": 8}, "data": {"beam": 8}, "verbs": {"translate": "..."}}]}
    done = subprocess.run([NODE, str(HARNESS), str(SCRIPT), "?model=pairs&verb=translate&text=one&run=1",
                           json.dumps({"/api/models": models, "/api/translate": {"results": []}})], capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    shown = json.loads(done.stdout)
    assert shown["sent"] == [{"path": "/api/translate", "body": {"model": "pairs", "texts": ["one"]}}]  # no beam: the run's
    assert shown["placeholders"]["beam"] == "8 (the run's)"
