"""The playground page in a real browser (Debian's headless ``chromium``; skipped when absent): a
live server on 127.0.0.1, the page asked to tag and to classify through its URL, and the result
checked in the DOM the page's JavaScript built and in the screenshot's pixels (the entity highlight
and the probability bars are drawn, not just answered)."""

from __future__ import annotations

import re
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium (apt-get install chromium)")

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")
Image = pytest.importorskip("PIL.Image")

from test_serve import shared_runs  # noqa: E402  (the same five tiny runs, trained once per session)

LOC_HIGHLIGHT = (155, 231, 160)  # style.css: mark.entity[data-type=LOC]
ANY_HIGHLIGHT = {(255, 214, 102), LOC_HIGHLIGHT, (158, 203, 255), (227, 181, 255)}
BEST_BAR, OTHER_BAR = (228, 87, 86), (76, 120, 168)  # style.css: .bar-row.best .bar, .bar


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from rnnkit.serve import create_app

    runs = shared_runs(tmp_path_factory)
    app = create_app([runs["people"], runs["reviews"]], device="cpu")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    live = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not live.started and time.time() < deadline:
        time.sleep(0.05)
    assert live.started
    yield f"http://127.0.0.1:{port}"
    live.should_exit = True
    thread.join(10)


def browse(url: str, *extra: str) -> subprocess.CompletedProcess:
    """Chromium, headless, with virtual time so that the page's requests and drawing finish first."""
    command = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=15000", *extra, url]
    return subprocess.run(command, capture_output=True, text=True, timeout=120)


def colours(png: Path) -> dict[tuple[int, int, int], int]:
    image = Image.open(png).convert("RGB")
    counts: dict[tuple[int, int, int], int] = {}
    for count, colour in image.getcolors(maxcolors=1 << 20):
        counts[colour] = count
    return counts


def test_tag_result_is_highlighted_in_the_page(server, tmp_path):
    url = f"{server}/?model=people&verb=tag&run=1&text={quote('Anna Smith visited Paris today.')}"
    dom = browse(url, "--dump-dom").stdout
    assert 'data-state="done"' in dom and 'data-verb="tag"' in dom
    marks = re.findall(r'<mark class="entity" data-type="([A-Z]+)">', dom)
    png = tmp_path / "tag.png"
    browse(url, "--window-size=1000,700", f"--screenshot={png}")
    seen = colours(png)
    assert marks  # the tiny tagger (seed 0) finds entities here; each is painted in its type's colour
    assert sum(seen.get(c, 0) for c in ANY_HIGHLIGHT) > 200 * len(marks)
    assert "tags per token" in dom and "Anna/" in dom  # every token's tag is listed


def test_classify_result_is_drawn_as_bars(server, tmp_path):
    url = f"{server}/?model=reviews&verb=classify&run=1&text={quote('a wonderful film')}"
    dom = browse(url, "--dump-dom").stdout
    assert 'data-state="done"' in dom and 'data-verb="classify"' in dom
    widths = [float(w) for w in re.findall(r'class="bar" style="width: ([0-9.]+)%;?"', dom)]
    assert len(widths) == 2 and abs(sum(widths) - 100) < 0.5  # one bar per class, the probabilities
    png = tmp_path / "classify.png"
    browse(url, "--window-size=1000,700", f"--screenshot={png}")
    seen = colours(png)
    # a bar 360 px wide at 100 %, 18 px high: the pixels of each colour follow the bar's width
    best, other = seen.get(BEST_BAR, 0), seen.get(OTHER_BAR, 0)
    assert best > 0.5 * 18 * 3.6 * max(widths) and other > 0.5 * 18 * 3.6 * min(widths)
    assert best >= other


def test_the_page_names_what_went_wrong(server):
    dom = browse(f"{server}/?model=people&verb=tag&run=1&text=", "--dump-dom").stdout
    assert 'data-state="error"' in dom and "type some text first" in dom  # no text: said before asking the server
    dom = browse(f"{server}/?model=people&verb=bogus&run=1&text=Anna", "--dump-dom").stdout  # a link may name any verb
    assert 'data-state="error"' in dom and "does not answer" in dom
