"""Serving benchmarks: a load run against ``rnnkit serve`` on 127.0.0.1, and onnxruntime against
rnnkit's own inference.

    python benchmarks/serve.py                       # everything: load runs of 60 s, then onnxruntime
    python benchmarks/serve.py --seconds 20 --clients 32 --only load
    python benchmarks/serve.py --only onnx

1. Load: ``rnnkit serve TAGGER CLASSIFIER`` in a subprocess, once with micro-batching and once with
   ``--no-batching``; N concurrent clients (asyncio streams) each send a request, wait for the answer
   and send the next (on its own keep-alive connection), for a fixed time, tag requests (CoNLL-2003 test sentences) and then classify
   requests (SST-5 test sentences). Reported: requests per second, p50 and p99 latency, errors
   (any answer other than 200, or none) and whether every request sent got an answer.
2. onnxruntime: the same tagger exported (``rnnkit export``) and run in onnxruntime with Viterbi in
   numpy, against ``TaggingTask.predict``, one sentence at a time; and one step of a word-level PTB
   language model (LSTM, 256 units), ``LanguageModel.step`` against the exported graph with T = 1.

The runs are trained here for a few steps on ../shared/data (their quality does not matter, their
sizes do: the CoNLL tagger's defaults, a BiLSTM of 200 units with character features and a CRF;
the SST classifier of benchmarks/tagging_classification.py). Only loopback is used. torch runs on
``--threads`` threads (default 1) in the server and here, onnxruntime on as many: on a small machine
shared with other work, two threads per process spin against each other and are ten times slower.
The load average before and after is printed: the figures mean little when it is far above the
number of cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def prepare_runs(directory: Path) -> dict[str, str]:
    """A CoNLL tagger, an SST-5 classifier and a PTB language model, trained for a few steps."""
    from rnnkit.runs import start

    quick = {"progress": False, "save_every_minutes": None, "log_every": 1000}
    settings = {
        "tagger": ("tagger", {"train": [str(DATA / "conll2003" / "eng.train")], "scheme": "iob1", "max_steps": 20, **quick}),
        "classifier": ("classifier", {"train": [str(DATA / "sst5" / "tabular" / "sst_train.txt")], "embedding_size": 64, "hidden_size": 64, "max_steps": 20, **quick}),
        "lm": ("lm", {"train": [str(DATA / "ptb" / "ptb.train.txt")], "valid": str(DATA / "ptb" / "ptb.valid.txt"), "level": "whitespace",
                      "cell": "lstm", "embedding_size": 256, "hidden_size": 256, "max_steps": 5, **quick}),
    }  # fmt: skip
    runs = {}
    for name, (kind, values) in settings.items():
        path = directory / name
        if not (path / "best.safetensors").exists():
            print(f"training {name} for a few steps ...", flush=True)
            start(kind, values, path)
        runs[name] = str(path)
    return runs


def tag_texts(limit: int = 2000) -> list[str]:
    from rnnkit.data.conll import read_conll

    return [" ".join(s.tokens) for s in read_conll(DATA / "conll2003" / "eng.testb")[:limit] if s.tokens]


def classify_texts(limit: int = 2000) -> list[str]:
    lines = (DATA / "sst5" / "tabular" / "sst_test.txt").read_text(encoding="utf-8").splitlines()
    return [line.split("\t", 1)[1] for line in lines[:limit] if "\t" in line]


# -- the load run ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(runs: list[str], batching: bool, threads: int | None, window_ms: float = 5.0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "rnnkit.cli", "serve", *runs, "--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    if threads:
        command += ["--threads", str(threads)]
    if not batching:
        command.append("--no-batching")
    command += ["--window-ms", str(window_ms)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    import httpx

    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server stopped: {process.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/api/health", timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            time.sleep(0.3)
    process.kill()
    raise RuntimeError("the server did not start within 120 s")


class Connection:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: a load generator must cost far less
    than the server it measures (httpx costs about as much CPU per request as the server here)."""

    def __init__(self, host: str, port: int):
        self.host, self.port, self.reader, self.writer = host, port, None, None

    async def post(self, path: str, body: dict) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        data = json.dumps(body).encode()
        head = f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
        self.writer.write(head.encode() + data)
        await self.writer.drain()
        status_line, *header_lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = dict(line.split(": ", 1) for line in header_lines if ": " in line)
        payload = await self.reader.readexactly(int(headers.get("content-length", 0)))
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return int(status_line.split()[1]), payload

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def load(url: str, verb: str, model: str, texts: list[str], clients: int, seconds: float) -> dict:
    """``clients`` concurrent clients, each on its own connection, sending one request after another
    for ``seconds``; an answer counts when its status is 200 and its body is JSON."""
    host, port = url.removeprefix("http://").split(":")
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    sent = answered = 0
    deadline = time.perf_counter() + seconds

    async def client(k: int):
        nonlocal sent, answered
        connection, i = Connection(host, int(port)), k
        while time.perf_counter() < deadline:
            sent += 1
            begin = time.perf_counter()
            try:
                status, payload = await connection.post(f"/api/{verb}", {"model": model, "text": texts[i % len(texts)]})
                json.loads(payload)
                key = str(status)
                answered += 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as error:
                key = type(error).__name__
                await connection.close()
            latencies.append(time.perf_counter() - begin)
            statuses[key] = statuses.get(key, 0) + 1
            i += clients
        await connection.close()

    begin = time.perf_counter()
    await asyncio.gather(*(client(k) for k in range(clients)))
    elapsed = time.perf_counter() - begin
    latencies.sort()
    ok = statuses.get("200", 0)
    return {
        "verb": verb, "clients": clients, "seconds": round(elapsed, 1), "requests": len(latencies), "rps": round(ok / elapsed, 1),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1), "p99_ms": round(1000 * latencies[int(0.99 * (len(latencies) - 1))], 1),
        "errors": len(latencies) - ok, "statuses": statuses, "lost": sent - answered,
    }  # fmt: skip


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_runs(runs: dict, clients: int, seconds: float, classify_seconds: float, threads: int | None, window_ms: float) -> list[dict]:
    """Each verb against a fresh server, batching on and off. Besides the client's figures: the
    server's CPU time per answered request (robust to other work on the machine, unlike requests
    per second), the part of it spent in inference, and the mean batch size."""
    import httpx

    results = []
    workload = [("tag", "tagger", tag_texts(), seconds), ("classify", "classifier", classify_texts(), classify_seconds)]
    for batching in (True, False):
        for verb, model, texts, duration in workload:
            process, url = start_server([runs[model]], batching, threads, window_ms)
            try:
                asyncio.run(load(url, verb, model, texts, clients, 2.0))  # warm-up
                before, counters = cpu_seconds(process.pid), httpx.get(f"{url}/api/health").json()["batches"][f"{model}/{verb}"]
                result = asyncio.run(load(url, verb, model, texts, clients, duration))
                after, totals = cpu_seconds(process.pid), httpx.get(f"{url}/api/health").json()["batches"][f"{model}/{verb}"]
                answered = totals["requests"] - counters["requests"]
                result.update(
                    batching=batching, server_cpu_ms=round(1000 * (after - before) / max(answered, 1), 1),
                    inference_cpu_ms=round(1000 * (totals["inference_cpu_s"] - counters["inference_cpu_s"]) / max(answered, 1), 1),
                    mean_batch=round(answered / max(totals["batches"] - counters["batches"], 1), 1),
                )  # fmt: skip
                print(json.dumps(result), flush=True)
                results.append(result)
            finally:
                process.terminate()
                process.wait(30)
    return results


# -- onnxruntime against rnnkit -------------------------------------------------------------------------


def viterbi(emissions: np.ndarray, transitions: np.ndarray, start: np.ndarray, end: np.ndarray) -> list[int]:
    """The best tag path of one sentence: emissions (T, K) -> T tag ids (as in docs/serving.md)."""
    delta, pointers = start + emissions[0], []
    for e in emissions[1:]:
        scores = delta[:, None] + transitions  # (K, K): from, to
        pointers.append(scores.argmax(0))
        delta = scores.max(0) + e
    path = [int((delta + end).argmax())]
    for back in reversed(pointers):
        path.append(int(back[path[-1]]))
    return path[::-1]


def per_call(fn, n: int, repeat: int = 2) -> float:
    """Best of ``repeat`` mean CPU times of ``n`` calls, in milliseconds (CPU time of this process:
    with one thread it is the work itself, less disturbed than wall time by other work)."""
    best = float("inf")
    for _ in range(repeat):
        begin = time.process_time()
        for i in range(n):
            fn(i)
        best = min(best, (time.process_time() - begin) / n)
    return 1000 * best


def onnx_against_rnnkit(runs: dict, sentences: int = 100, tokens: int = 200) -> dict:
    import onnxruntime as ort

    from rnnkit.data.conll import TaggedSentence, read_conll
    from rnnkit.export import export_model
    from rnnkit.runs import open_run

    out = {"threads": torch.get_num_threads()}
    ort_options = ort.SessionOptions()
    ort_options.intra_op_num_threads = torch.get_num_threads()  # the same number of threads for both
    task, model, _, device = open_run(runs["tagger"], device="cpu")
    graphs = export_model(model)
    tagger = ort.InferenceSession(graphs["model"].SerializeToString(), ort_options, providers=["CPUExecutionProvider"])
    data = [s for s in read_conll(DATA / "conll2003" / "eng.testb") if s.tokens][:sentences]
    batches = [task.collate([TaggedSentence(s.tokens, [])]) for s in data]

    def with_onnx(i):
        b = batches[i]
        e, transitions, start, end = tagger.run(None, {"words": b.words.numpy(), "chars": b.chars.numpy(), "char_lengths": b.char_lengths.int().numpy(),
                                                       "cases": b.cases.numpy(), "lengths": b.lengths.int().numpy()})  # fmt: skip
        return viterbi(e[:, 0], transitions, start, end)

    with torch.no_grad():
        assert all(with_onnx(i) == model.decode(batches[i])[0] for i in range(20))  # the same tags
        out["tag_rnnkit_ms"] = per_call(lambda i: model.decode(batches[i]), len(batches))
    out["tag_onnxruntime_ms"] = per_call(with_onnx, len(batches))
    # what micro-batching buys inside the server: rnnkit's tagging of 32 sentences in one batch, per sentence
    with torch.no_grad():
        groups = [data[i : i + 32] for i in range(0, len(data) - 31, 32)]
        out["tag_rnnkit_batch32_ms"] = per_call(lambda i: task.predict(model, groups[i], device), len(groups)) / 32
        out["tag_rnnkit_alone_ms"] = per_call(lambda i: task.predict(model, [data[i]], device), len(data))
    out["tag_sentences"] = len(batches)
    out["tag_mean_words"] = round(sum(len(s.tokens) for s in data) / len(data), 1)

    task, model, _, _ = open_run(runs["lm"], device="cpu")
    lm = ort.InferenceSession(export_model(model)["model"].SerializeToString(), ort_options, providers=["CPUExecutionProvider"])
    V, H = model.output.out_features, model.recurrent.hidden_size
    ids = torch.randint(3, V, (tokens,)).tolist()
    with torch.no_grad():
        state = [model.start(1)]

        def rnnkit_step(i):
            state[0] = model.step(torch.tensor([ids[i]]), state[0]).state

        out["lm_step_rnnkit_ms"] = per_call(rnnkit_step, tokens)
    feeds = {"lengths": np.ones(1, np.int32), "state_a": np.zeros((1, 1, H), np.float32), "state_c": np.zeros((1, 1, H), np.float32)}

    def onnx_step(i):
        _, feeds["state_a"], feeds["state_c"] = lm.run(None, {**feeds, "input_ids": np.array([[ids[i]]])})

    out["lm_step_onnxruntime_ms"] = per_call(onnx_step, tokens)
    out["lm"] = f"LSTM, {H} units, vocabulary {V}"
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60, help="tag load run per mode (default 60)")
    parser.add_argument("--classify-seconds", type=float, default=None, help="classify load run per mode (default: --seconds)")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--only", choices=["load", "onnx"])
    parser.add_argument("--runs", default="/tmp/rnnkit-serve-bench", help="where the benchmark's runs are trained (kept for reuse)")
    parser.add_argument("--threads", type=int, default=1, help="torch's threads, in the server and here (default 1: the machine is shared)")
    parser.add_argument("--window-ms", type=float, default=5.0, help="the server's batching window (default 5, as rnnkit serve's)")
    parser.add_argument("--json", help="write the results here too")
    args = parser.parse_args()
    if not (DATA / "conll2003").exists():
        sys.exit(f"needs the shared data at {DATA}")
    torch.set_num_threads(args.threads)
    runs = prepare_runs(Path(args.runs))
    results = {"load_average_before": os.getloadavg()}
    if args.only != "onnx":
        results["load"] = load_runs(runs, args.clients, args.seconds, args.classify_seconds or args.seconds, args.threads, args.window_ms)
        print("\n| verb | batching | clients | seconds | requests/s | p50 ms | p99 ms | errors | lost | server CPU ms/request | of which inference | mean batch |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for r in results["load"]:
            print(f"| {r['verb']} | {'on' if r['batching'] else 'off'} | {r['clients']} | {r['seconds']} | {r['rps']} | {r['p50_ms']} | {r['p99_ms']} | "
                  f"{r['errors']} | {r['lost']} | {r['server_cpu_ms']} | {r['inference_cpu_ms']} | {r['mean_batch']} |")  # fmt: skip
    if args.only != "load":
        results["onnx"] = onnx_against_rnnkit(runs)
    results["load_average_after"] = os.getloadavg()
    print(f"load average (1, 5, 15 min) before {results['load_average_before']}, after {results['load_average_after']}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
