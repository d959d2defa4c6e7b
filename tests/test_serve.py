"""``rnnkit serve``: every endpoint with tiny runs of every kind, bad requests answered 4xx with a
message, 1,000 fuzzed requests without a 500, micro-batching that really batches and loses nothing,
a full queue answered 503, and an internal error answered 500 while the server keeps serving."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import threading
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")

from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.serve import create_app  # noqa: E402
from rnnkit.serve.batching import MicroBatcher, QueueFull  # noqa: E402


def make_runs(directory: Path) -> dict[str, str]:
    """Five runs, one of each kind, trained for three steps on data written here: name -> path."""
    from rnnkit.runs import start

    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    names = directory / "names.txt"
    names.write_text("\n".join(["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank"] * 3) + "\n")
    people, places = ["Anna Smith", "Bob Jones", "Carla Diaz"], ["Paris", "New York", "Tokyo"]
    sentences = []
    for _ in range(24):
        person, place = rng.choice(people).split(), rng.choice(places).split()
        words = [*person, "visited", *place, "today", "."]
        tags = ["B-PER"] + ["I-PER"] * (len(person) - 1) + ["O", "B-LOC"] + ["I-LOC"] * (len(place) - 1) + ["O", "O"]
        sentences.append("\n".join(f"{w} {t}" for w, t in zip(words, tags)))
    conll = directory / "people.conll"
    conll.write_text("\n\n".join(sentences) + "\n")
    reviews = directory / "reviews.tsv"
    reviews.write_text("\n".join(["pos\ta wonderful film", "neg\ta dull film", "pos\tgreat acting", "neg\tawful mess"] * 4) + "\n")
    source, target = directory / "pairs.src", directory / "pairs.tgt"
    pairs = [("one two", "eins zwei"), ("two three", "zwei drei"), ("three one", "drei eins"), ("one", "eins")] * 4
    source.write_text("\n".join(s for s, _ in pairs) + "\n")
    target.write_text("\n".join(t for _, t in pairs) + "\n")
    songs = [[[60 + (t + k) % 7, 67, 72 - (k % 2)] for t in range(16)] for k in range(4)]
    chorales = directory / "songs.json"
    chorales.write_text(json.dumps({"train": songs, "valid": songs[:1], "test": songs[:1]}))
    small = {"hidden_size": 8, "max_steps": 3, "progress": False, "eval_every": 3, "save_every_minutes": None}
    settings = {
        "names": ("lm", {"train": [str(names)], "cell": "gru", "embedding_size": 4, **small}),
        "people": ("tagger", {"train": [str(conll)], "valid": str(conll), "scheme": "iob2", "word_embedding_size": 6, "char_embedding_size": 4, "char_hidden_size": 3, **small}),
        "reviews": ("classifier", {"train": [str(reviews)], "valid": str(reviews), "embedding_size": 6, **small}),
        "pairs": ("seq2seq", {"source": str(source), "target": str(target), "valid_source": str(source), "valid_target": str(target), "embedding_size": 6, "eval_beam": 1, **small}),
        "songs": ("music", {"train": [str(chorales)], "cell": "lstm", **small}),
    }  # fmt: skip
    for name, (kind, values) in settings.items():
        start(kind, values, directory / name)
    return {name: str(directory / name) for name in settings}


def shared_runs(tmp_path_factory) -> dict[str, str]:
    """The five runs, trained once per test session (test_playground uses them too)."""
    pytest.importorskip("seqeval")
    pytest.importorskip("pretty_midi")
    directory = tmp_path_factory.getbasetemp() / "serve_runs"
    done = directory / "done.json"
    if not done.exists():
        done.parent.mkdir(parents=True, exist_ok=True)
        done.write_text(json.dumps(make_runs(directory)))
    return json.loads(done.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return shared_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def client(runs):
    with TestClient(create_app(list(runs.values()), device="cpu")) as c:
        yield c


def test_models_and_health(client):
    assert client.get("/api/health").json()["status"] == "ok"
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert {name: m["task"] for name, m in models.items()} == {"names": "lm", "people": "tagger", "reviews": "classifier", "pairs": "seq2seq", "songs": "music"}
    assert set(models["names"]["verbs"]) == {"generate", "score"} and models["people"]["model"]["cell"] == "lstm"
    assert models["reviews"]["metrics"]["steps"] == 3 and models["reviews"]["labels"] == ["neg", "pos"]  # summary.json, labels
    assert client.get("/openapi.json").json()["paths"]["/api/tag"]["post"]


def test_the_playground_needs_nothing_from_elsewhere(client):
    """No CDN: the page and what it loads come from this server, and FastAPI's /docs (which loads
    Swagger's scripts from a CDN) is off."""
    import re

    page = client.get("/").text
    assert "rnnkit playground" in page
    for ref in re.findall(r'(?:src|href)="([^"]+)"', page):
        assert ref.startswith("/"), ref
        assert client.get(ref).status_code == 200, ref
    for name in ("app.js", "style.css"):
        assert "http://" not in client.get(f"/static/{name}").text and "https://" not in client.get(f"/static/{name}").text
    assert client.get("/docs").status_code == 404


def test_tag(client):
    r = client.post("/api/tag", json={"texts": ["Anna Smith visited Paris today.", "Bob went home"]}).json()
    first = r["results"][0]
    assert first["tokens"] == ["Anna", "Smith", "visited", "Paris", "today", "."] and len(first["tags"]) == 6
    for span in first["entities"]:
        assert span["text"] == " ".join(first["tokens"][span["start"] : span["end"]])
    assert r["model"] == "people" and len(r["results"]) == 2


def test_classify(client):
    r = client.post("/api/classify", json={"model": "reviews", "text": "a wonderful film"}).json()["results"][0]
    probabilities = list(r["probabilities"].values())
    assert set(r["probabilities"]) == {"pos", "neg"} and abs(sum(probabilities) - 1) < 1e-3
    assert r["label"] == next(iter(r["probabilities"])) and probabilities == sorted(probabilities, reverse=True)


def test_generate_and_score(client):
    body = {"num": 3, "seed": 7, "max_length": 12, "temperature": 0.8, "top_k": 5, "top_p": 0.9, "prime": "a"}
    first = client.post("/api/generate", json=body).json()["samples"]
    assert len(first) == 3 and all(s["text"].startswith("a") and isinstance(s["novel"], bool) for s in first)
    assert client.post("/api/generate", json=body).json()["samples"] == first  # a seed gives the same samples
    r = client.post("/api/score", json={"text": "anna"}).json()["results"][0]
    assert [t["token"] for t in r["tokens"]] == ["a", "n", "n", "a", "<EOS>"]
    assert abs(r["log_prob"] - sum(t["log_prob"] for t in r["tokens"])) < 1e-6 and r["perplexity"] > 1


def test_a_leading_bom_is_dropped_as_the_command_line_drops_it(client):
    """A text pasted from a file kept its BOM: scored as an unknown token, returned in a sample."""
    plain = client.post("/api/score", json={"text": "anna"}).json()["results"][0]
    assert client.post("/api/score", json={"text": "\ufeffanna"}).json()["results"][0] == plain
    assert client.post("/api/score", json={"texts": ["\ufeffanna"]}).json()["results"][0] == plain
    samples = client.post("/api/generate", json={"num": 2, "prime": "\ufeffan", "seed": 1, "max_length": 5}).json()["samples"]
    assert all(s["text"].startswith("an") for s in samples)


def test_translate(client):
    r = client.post("/api/translate", json={"text": "one two", "beam": 3, "nbest": 2}).json()["results"][0]
    assert r["source_tokens"] == ["one", "two"] and len(r["translations"]) == 2
    best = r["translations"][0]
    assert best["score"] >= r["translations"][1]["score"]
    assert len(best["attention"]) == len(best["tokens"]) and all(abs(sum(row) - 1) < 1e-4 and len(row) == 2 for row in best["attention"])


def test_compose(client):
    r = client.post("/api/compose", json={"steps": 8, "num": 2, "seed": 0}).json()
    assert len(r["pieces"]) == 2
    piece = r["pieces"][0]
    assert piece["num_steps"] == 8 and base64.b64decode(piece["midi_base64"])[:4] == b"MThd"
    assert base64.b64decode(piece["png_base64"])[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("verb, body, status, words", [
    ("tag", {"text": ""}, 422, "text"),
    ("tag", {"text": "x" * 3000}, 422, "at most 2000"),
    ("tag", {"text": "a", "texts": ["b"]}, 422, "either"),
    ("tag", {"text": "..?"}, 200, ""),
    ("tag", {"text": "  "}, 422, "text: blank"),
    ("tag", {"texts": ["fine", " \t "]}, 422, "texts: text 1 is blank"),
    ("classify", {"text": "   "}, 422, "blank"),
    ("score", {"model": "names", "text": "   "}, 422, "blank"),
    ("translate", {"text": "   "}, 422, "blank"),
    ("generate", {"num": "2"}, 422, "num"),
    ("generate", {"greedy": "yes"}, 422, "greedy"),
    ("tag", {"model": "names", "text": "x"}, 400, "answers generate, score"),
    ("tag", {"model": "nobody", "text": "x"}, 404, "no model named"),
    ("tag", {"text": "x", "colour": "red"}, 422, "colour"),
    ("classify", [1, 2], 422, "dictionary"),
    ("generate", {"temperature": 0}, 422, "temperature"),
    ("generate", {"num": 10**9}, 422, "num"),
    ("generate", {"seed": -1}, 422, "seed"),
    ("generate", {"top_p": "NaN"}, 422, "top_p"),
    ("translate", {"text": "one", "beam": 2, "nbest": 3}, 400, "nbest (3) cannot exceed beam (2)"),
    ("translate", {"text": "one", "nbest": 6}, 400, "nbest (6) cannot exceed beam (5, the run's)"),
    ("compose", {"steps": 100000}, 422, "steps"),
])  # fmt: skip
def test_bad_requests_get_a_4xx_with_a_message(client, verb, body, status, words):
    r = client.post(f"/api/{verb}", json=body)
    assert r.status_code == status, r.text
    if status != 200:
        assert words in r.json()["error"] and "Traceback" not in r.text


def test_not_json_and_oversized_bodies(client):
    r = client.post("/api/tag", content=b"{oops", headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"].startswith("the request body is not valid JSON (Expecting property name")
    r = client.post("/api/classify", content=b'{"text": "good", "text": "bad"}', headers={"content-type": "application/json"})  # the last one was read
    assert r.status_code == 422 and "the key 'text' is given twice" in r.json()["error"]
    r = client.post("/api/score", content=b'{"text": "anna', headers={"content-type": "application/json"})  # was "starting at at character 9"
    assert r.status_code == 422 and "(Unterminated string starting at: line 1 column 10 (char 9))" in r.json()["error"]
    r = client.post("/api/tag", content=b"x" * (2 << 20), headers={"content-type": "application/json"})
    assert r.status_code == 413

    def chunked(data: bytes, size: int = 1 << 16):  # a body without Content-Length
        for start in range(0, len(data), size):
            yield data[start : start + size]

    padded = b"{" + b" " * (3 << 20) + b'"text": "anna"}'
    r = client.post("/api/tag", content=chunked(padded), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "over 1048576 bytes" in r.json()["error"]
    r = client.post("/api/tag", content=chunked(b'{"text": "Anna went home"}'), headers={"content-type": "application/json"})
    assert r.status_code == 200, r.text
    r = client.get("/api/tag")
    assert r.status_code == 405 and r.json()["error"].startswith("Method Not Allowed")
    r = client.get("/api/nothing")
    assert r.status_code == 404 and "error" in r.json()


def random_value(rng: random.Random, depth: int = 0):
    choices = [
        lambda: rng.randint(-(10**20), 10**20), lambda: rng.choice([0, 1, -1, 2**63, 5, 500, 513]),
        lambda: rng.uniform(-1e6, 1e6), lambda: rng.choice([0.0, 1e-9, 1e308, -0.0]), lambda: None, lambda: rng.random() < 0.5,
        lambda: "".join(rng.choice("ab .,XY\u00e9\u4e2d\n\t\x00<>") for _ in range(rng.randint(0, 30))), lambda: "z" * rng.choice([1, 2000, 2001]),
    ]  # fmt: skip
    if depth < 2:
        choices += [lambda: [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))], lambda: {"text": random_value(rng, depth + 1)}]
    return rng.choice(choices)()


FIELDS = ["model", "text", "texts", "num", "temperature", "top_k", "top_p", "greedy", "prime", "max_length", "seed", "beam", "nbest",
          "replace_unk", "attention", "steps", "step_seconds", "program", "png", "junk"]  # fmt: skip


def fuzzed_request(rng: random.Random) -> tuple[str, object]:
    verb = rng.choice(["tag", "classify", "score", "generate", "translate", "compose"])
    if rng.random() < 0.1:
        return verb, random_value(rng)  # not even an object
    body = {f: random_value(rng) for f in rng.sample(FIELDS, rng.randint(0, 4))}
    if rng.random() < 0.5:
        body["model"] = rng.choice([None, "names", "people", "reviews", "pairs", "songs", "other"])
    if rng.random() < 0.15:  # often valid, so that the models run too (kept short: steps and lengths of 1..8)
        body.update({"steps": rng.randint(1, 8), "max_length": rng.randint(1, 8), "num": 1, "text": "one two"})
        body.pop("texts", None)
    if verb == "generate":
        body.setdefault("max_length", 4)  # short samples when left out (the default is 100 tokens)
    if verb == "compose":
        body.setdefault("steps", 4)
        body["png"] = False  # drawing takes a tenth of a second each: not what this test is about
    return verb, body


def test_a_thousand_fuzzed_requests_never_get_a_500(runs):
    """1,000 requests of random JSON, wrong types and huge values, 20 at a time: none gets a 500."""
    import httpx

    app = create_app(list(runs.values()), device="cpu")
    rng = random.Random(1234)
    requests = [fuzzed_request(rng) for _ in range(1000)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            answers = []
            for i in range(0, len(requests), 20):
                answers += await asyncio.gather(*(c.post(f"/api/{verb}", json=body) for verb, body in requests[i : i + 20]))
            return answers, (await c.get("/api/health")).status_code

    answers, health = asyncio.run(main())
    for (verb, body), r in zip(requests, answers):
        assert r.status_code < 500, (verb, body, r.text)
        assert r.status_code == 200 or "error" in r.json()
    assert health == 200
    statuses = [r.status_code for r in answers]
    assert statuses.count(200) > 20 and sum(400 <= s < 500 for s in statuses) > 500  # both kinds were tried


def test_concurrent_requests_run_as_batches_and_none_is_lost(runs):
    import httpx

    app = create_app([runs["people"], runs["reviews"]], device="cpu", window_ms=20)
    texts = [f"Anna Smith visited Paris {'today ' * (i % 5)}." for i in range(40)]

    async def main():
        transport = httpx.ASGITransport(app=app)
        async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            answers = await asyncio.gather(*(c.post("/api/tag", json={"text": t}) for t in texts))
            return answers, app.state.batchers["people", "tag"]

    answers, batcher = asyncio.run(main())
    assert [a.json()["results"][0]["text"] for a in answers] == texts  # each answer is its own request's
    assert batcher.items == 40 and batcher.batches < 20  # several requests per batch


def test_requests_batched_together_keep_their_own_attention_setting(runs):
    """Requests batched into one beam search took the first one's ``attention``: the one that asked
    for the weights got none when a request without them was queued first, and the other way round."""
    from rnnkit.serve import schemas
    from rnnkit.serve.verbs import _translate

    app = create_app([runs["pairs"]], device="cpu")
    served = app.state.served["pairs"]
    for first in (False, True):
        requests = [schemas.TranslateRequest(text="one two", attention=first), schemas.TranslateRequest(text="two three", attention=not first),
                    schemas.TranslateRequest(texts=["one", "three one"], attention=first)]  # fmt: skip
        answers = _translate(served, requests)
        for request, answer in zip(requests, answers):
            for result in answer["results"]:
                assert all(("attention" in h) == request.attention for h in result["translations"]), (first, request)


def test_a_verb_no_loaded_model_answers_is_a_404_that_says_so(runs):
    """It said "name the 'model' for tag (models answering it: none)": naming one cannot help."""
    with TestClient(create_app([runs["pairs"]], device="cpu")) as c:
        r = c.post("/api/tag", json={"text": "Anna went home"})
    assert r.status_code == 404 and r.json()["error"] == "no model loaded answers tag; loaded: pairs (seq2seq)"


def test_a_full_queue_answers_503_and_an_internal_error_500_and_serving_goes_on(runs):
    from rnnkit.serve import verbs

    app = create_app([runs["reviews"]], device="cpu", max_queue=1)
    with TestClient(app) as c:
        served = app.state.served["reviews"]
        original = served.task
        served.task = None  # a bug inside inference: AttributeError in the worker
        r = c.post("/api/classify", json={"text": "a dull film"})
        assert r.status_code == 500 and "internal error" in r.json()["error"] and "Traceback" not in r.text
        served.task = original
        assert c.post("/api/classify", json={"text": "a dull film"}).status_code == 200
    del verbs

    gate = threading.Event()

    async def main():
        from concurrent.futures import ThreadPoolExecutor

        batcher = MicroBatcher(lambda items: (gate.wait(5), items)[1], ThreadPoolExecutor(1), max_batch=1, window_ms=0, max_queue=1)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(1))  # taken by the worker, which then blocks
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(batcher.submit(2))  # waits in the queue (size 1)
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await batcher.submit(3)
        gate.set()
        assert await first == 1 and await second == 2
        await batcher.stop()

    asyncio.run(main())


def test_cli_errors_are_one_line(runs, capsys):
    from rnnkit.cli import main

    def code(*argv):
        try:
            return main(list(argv))
        except SystemExit as exit:  # an option refused while parsing
            return exit.code

    assert code("serve", runs["names"], "--port", "0") == 2
    assert "--port" in capsys.readouterr().err.strip().splitlines()[-1]
    assert code("serve", str(Path(runs["names"]).parent / "nowhere")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no such run directory" in err[0]
    assert code("serve", runs["names"], "--window-ms", "1e12") == 2  # every batched request (and the shutdown) held for good
    assert "--window-ms: must be a finite number >= 0 and <= 10000" in capsys.readouterr().err


def test_a_reply_too_large_to_send_is_refused_and_large_ones_leave_the_server_answering(client):
    """64 long texts with beam and nbest 10 made a reply of gigabytes, encoded on the event loop:
    the server answered nothing else, /api/health neither, for minutes."""
    body = {"model": "pairs", "texts": ["one two " * 250] * 64, "beam": 10, "nbest": 10}
    response = client.post("/api/translate", json=body)
    assert response.status_code == 400 and "the attention weights of these translations could be" in response.json()["error"]
    assert '"attention": false' in response.json()["error"]
    small = client.post("/api/translate", json={"model": "pairs", "texts": ["one two"] * 3, "beam": 2, "nbest": 2})
    assert small.status_code == 200 and len(small.json()["results"]) == 3 and "attention" in small.json()["results"][0]["translations"][0]
    digits = client.post("/api/score", content=b'{"model": "names", "text": "anna", "seed": ' + b"9" * 5000 + b"}", headers={"content-type": "application/json"})
    assert digits.status_code == 422 and "a number of more than 4,300 digits" in digits.json()["error"] and "sys." not in digits.json()["error"]


def test_a_port_in_use_is_one_line_and_no_banner(runs, capsys):
    """Another server holds the port: `rnnkit serve` says so in one line naming --port, and does not
    first announce that it serves there."""
    import socket

    from rnnkit.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["serve", runs["names"], "--port", str(port)])
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and f"--port {port}" in lines[0] and "in use" in lines[0], err
    assert "rnnkit serve:" not in out


def test_two_runs_of_one_name_or_one_run_twice_are_refused_not_renamed(runs, tmp_path):
    """``serve runs/cls other/cls x/cls-2`` named them cls, cls-2 and cls-2-2: a request for "cls-2"
    reached other/cls, not the run whose directory is cls-2."""
    import shutil

    from rnnkit.errors import UsageError
    from rnnkit.serve.app import load_runs

    copy = tmp_path / "other" / "reviews"
    shutil.copytree(runs["reviews"], copy)
    with pytest.raises(UsageError, match="both are named 'reviews'"):
        load_runs([runs["reviews"], str(copy)], device="cpu")
    with pytest.raises(UsageError, match="given twice"):
        load_runs([runs["reviews"], runs["reviews"] + "/"], device="cpu")
    assert set(load_runs([runs["reviews"], runs["names"]], device="cpu")) == {"reviews", "names"}


def test_the_schema_states_the_sizes_the_server_enforces(client):
    """/openapi.json gave ``texts`` items as a bare string while the server refused empty ones and
    ones over 2000 characters: a client generated from the schema could not know."""
    post = client.get("/openapi.json").json()["paths"]["/api/classify"]["post"]
    texts = post["requestBody"]["content"]["application/json"]["schema"]["properties"]["texts"]["anyOf"][0]
    assert texts["maxItems"] == 64 and texts["items"] == {"type": "string", "minLength": 1, "maxLength": 2000}
    answer = client.post("/api/classify", json={"texts": ["fine", "x" * 2001]})
    assert answer.status_code == 422 and "texts.1" in answer.json()["error"]


def test_a_client_gone_mid_body_is_no_internal_error(caplog):
    """A client that closed its connection before its body ended was logged as an internal error,
    with two tracebacks, on every such request."""
    import asyncio
    from types import SimpleNamespace

    from starlette.requests import ClientDisconnect

    from rnnkit.serve.app import ClientError, _body_within_limit

    class Gone:
        url = SimpleNamespace(path="/api/tag")

        async def stream(self):
            yield b'{"text": "An'
            raise ClientDisconnect()

    with pytest.raises(ClientError) as error:
        asyncio.run(_body_within_limit(Gone()))
    assert error.value.status == 400 and "closed before the request body ended" in str(error.value)
    assert "Traceback" not in caplog.text


def test_a_text_is_one_line_as_the_command_line_reads_it(client):
    """A line posted as read from a file ("anna\\n") was scored by a character model with a line
    break token the command line never reads; a break inside a text joined two lines into one."""
    plain = client.post("/api/score", json={"text": "anna"}).json()["results"][0]
    for ending in ("\n", "\r\n", "\r"):
        assert client.post("/api/score", json={"text": "anna" + ending}).json()["results"][0] == plain
        assert client.post("/api/score", json={"texts": ["anna" + ending]}).json()["results"][0] == plain
    r = client.post("/api/score", json={"texts": ["bob", "anna\nbob"]})
    assert r.status_code == 422 and "text 1 holds a line break" in r.json()["error"], r.json()
    r = client.post("/api/score", json={"text": "\n"})
    assert r.status_code == 422 and "blank" in r.json()["error"]
    # a prime: one line for this model (line_breaks eos), named as the request's field, not as rnnkit sample's option
    r = client.post("/api/generate", json={"num": 1, "prime": "a\nb", "seed": 1, "max_length": 5})
    assert r.status_code == 400 and r.json()["error"].startswith("prime holds a line break"), r.json()


def test_a_runs_summary_is_read_as_every_verb_reads_it(runs, tmp_path):
    """serve read summary.json itself: a damaged one was JSONDecodeError's traceback, and a NaN (a hand
    edit) loaded, then failed every GET /api/models with a 500."""
    import shutil

    from rnnkit.errors import DataError
    from rnnkit.serve.app import load_runs

    copy = tmp_path / "reviews"
    shutil.copytree(runs["reviews"], copy)
    summary = json.loads((copy / "summary.json").read_text())
    (copy / "summary.json").write_text(json.dumps({**summary, "test_loss": float("nan")}))
    with TestClient(create_app([str(copy)], device="cpu")) as c:
        response = c.get("/api/models")
        assert response.status_code == 200 and response.json()["models"][0]["metrics"]["test_loss"] is None
    (copy / "summary.json").write_text('{"test_loss": 1.0,')
    with pytest.raises(DataError, match=r"summary\.json: damaged, not a JSON file of rnnkit's"):
        load_runs([str(copy)], device="cpu")


def test_a_served_run_whose_seen_file_is_cut_short_keeps_serving(runs, tmp_path):
    """seen.u64 was memory-mapped for the server's life: a copy of a smaller run over the served
    folder cut it short, and the next generate request ended the server with SIGBUS."""
    import shutil

    import numpy as np

    from rnnkit.data.corpus import SeenLines

    copy = tmp_path / "names"
    shutil.copytree(runs["names"], copy)
    app = create_app([str(copy)], device="cpu")
    seen = app.state.served["names"].task.seen
    assert isinstance(seen, SeenLines) and not isinstance(seen.hashes, np.memmap)
    (copy / "seen.u64").write_bytes(b"")  # truncated in place, as cp over it does
    with TestClient(app) as c:
        response = c.post("/api/generate", json={"num": 3, "seed": 1})
        assert response.status_code == 200 and len(response.json()["samples"]) == 3


def test_a_request_may_name_any_run_a_folder_name_can_hold():
    """A run in a folder of 201 characters was loaded and listed, and every request naming it was a
    422 ('at most 200 characters'): the limit is now a folder name's own."""
    from rnnkit.serve.schemas import MAX_MODEL_NAME, Request

    assert Request(model="c" * 255).model == "c" * 255
    assert MAX_MODEL_NAME >= 255
    with pytest.raises(ValueError):
        Request(model="c" * (MAX_MODEL_NAME + 1))
