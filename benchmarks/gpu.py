"""One script for a GPU machine: check every engine against the reference on CUDA, then time them
next to cuDNN, then time one-token sampling steps.

    PYTHONPATH=src python benchmarks/gpu.py [--quick] [--out results.md]

1. Correctness: every cell × engine (fused with its torch-op loops, triton, native = cuDNN) against the
   reference engine on the GPU, float64, padded batch, 2 layers, both directions: the largest
   difference in outputs, final states and all gradients.
2. Training step (forward + backward of outputs.sum()) in ms, CUDA events, median of repeats, at
   (B, T, H) in {(8,256,256), (32,256,512), (64,256,1024), (16,1024,768)}, n_x = H, in fp32, bf16
   and fp16: torch.nn.LSTM / torch.nn.GRU (cuDNN) next to rnnkit's engines, after a sweep of the
   persistent kernels' tile settings.
3. Sampling: microseconds per generated token for an LSTM language-model step (embedding, cell,
   output layer, softmax, multinomial draw, feeding the token back), B = 1, H in {512, 1024},
   in eager PyTorch and replayed from a CUDA graph; 4. rnnkit's own samplers (eager, CUDA graph of
   torch ops, fused Triton kernels); 5. language-model steps under autocast; 6. the native engine
   against torch.nn.LSTM, with profiles.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from rnnkit import Recurrent
from rnnkit.engines import engines_for

CELLS = [("rnn", {}), ("gru", {}), ("gru-simple", {}), ("gru-cudnn", {}), ("lstm", {}), ("lstm", {"peepholes": True})]
SHAPES = [(8, 256, 256), (32, 256, 512), (64, 256, 1024), (16, 1024, 768)]
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
TRAINING_DTYPES = list(DTYPES)  # --dtypes: the training table's
TUNE = False  # --tune: sweep the tile settings of the persistent kernels and the fused sampler first
SHORT = False  # --short: leave out the slow engines (per-step Triton kernels, torch-op loops)


OUT_FILE: str | None = None  # --out: every line goes there as soon as it is emitted


def emit(lines: list[str], text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)
    if OUT_FILE:  # a step killed at its time limit keeps what it measured
        with open(OUT_FILE, "a") as f:
            f.write(text + "\n")


def outputs_and_grads(layer, x, lengths) -> list:
    """Outputs, final states, and the gradients of x and every parameter of a loss on all of them."""
    out, final = layer(x, lengths=lengths)
    finals = final if isinstance(final, tuple) else (final,)
    loss = out.pow(2).sum() + sum(f.sum() for f in finals)
    return [out, *finals, *torch.autograd.grad(loss, [x, *layer.parameters()])]


def correctness(lines: list[str]) -> None:
    emit(lines, "## 1. Engines against the reference engine on the GPU (float64)\n")
    emit(lines, "| cell | engine | max abs difference |")
    emit(lines, "|---|---|---:|")
    for kind, options in CELLS:
        torch.manual_seed(0)
        reference = Recurrent(kind, 5, 16, num_layers=2, bidirectional=True, engine="reference", **options).cuda().double()
        x = torch.randn(11, 6, 5, device="cuda", dtype=torch.float64, requires_grad=True)
        lengths = torch.tensor([11, 4, 9, 1, 11, 7])
        for name in engines_for(reference.cells["l0"], "cuda"):
            if name == "reference":
                continue
            other = Recurrent(kind, 5, 16, num_layers=2, bidirectional=True, engine=name, **options).cuda().double()
            other.load_state_dict(reference.state_dict())
            try:
                results = [outputs_and_grads(layer, x, lengths) for layer in (reference, other)]
                diff = f"{max((a - b).abs().max().item() for a, b in zip(*results)):.1e}"
            except Exception as error:  # noqa: BLE001 (report it, check the others)
                diff = "error: " + describe(error)
            emit(lines, f"| {kind}{'+peepholes' if options else ''} | {name} | {diff} |")
    emit(lines)
    persistent_many_programs(lines)


def describe(error: BaseException) -> str:
    """One line: the error and the errors it came from (Triton's compile errors hide their cause)."""
    parts = []
    while error is not None and len(parts) < 4:
        text = " ".join(str(error).split())
        parts.append(f"{type(error).__name__}: {text[-300:]}")
        error = error.__cause__ or error.__context__
    return " <- ".join(parts).replace("|", "/")


def persistent_many_programs(lines: list[str]) -> None:
    """The persistent kernels with many programs meeting at the grid barrier: n_a = 200 (13 programs
    of 16 units), 70 rows (three row tiles), ragged lengths, T = 40, against the reference engine."""
    emit(lines, "### Persistent kernels with many programs (n_a = 200, B = 70 ragged, T = 40, both directions)\n")
    emit(lines, "Largest difference relative to 1 + the largest value, over outputs, final states and all gradients.\n")
    emit(lines, "| cell | dtype | max abs difference | bound |")
    emit(lines, "|---|---|---:|---:|")
    from rnnkit.engines.triton import persistent as triton_persistent

    kinds = [("rnn", {}), ("gru-simple", {}), ("gru", {}), ("gru", {"overlap": False}), ("gru-cudnn", {}), ("lstm", {}), ("lstm", {"peepholes": True})]
    for kind, settings in kinds:
        options = {k: v for k, v in settings.items() if k != "overlap"}
        triton_persistent.configure(overlap=settings.get("overlap", True))
        for dtype, bound in ((torch.float64, 1e-9), (torch.float32, 1e-4), (torch.float16, 2e-2), (torch.bfloat16, 5e-2)):
            torch.manual_seed(0)
            reference = Recurrent(kind, 24, 200, bidirectional=True, engine="reference", **options).cuda().to(dtype)
            other = Recurrent(kind, 24, 200, bidirectional=True, engine="persistent", **options).cuda().to(dtype)
            other.load_state_dict(reference.state_dict())
            x = torch.randn(40, 70, 24, device="cuda", dtype=dtype, requires_grad=True)
            lengths = torch.randint(1, 41, (70,))
            lengths[3] = 40
            try:
                results = [outputs_and_grads(layer, x, lengths) for layer in (reference, other)]
                diff = max(((a - b).abs().max() / (1 + a.abs().max())).item() for a, b in zip(*results))
                verdict = f"{diff:.1e} | {'ok' if diff < bound else 'FAILED'} {bound:.0e}"
            except Exception as error:  # noqa: BLE001
                verdict = f"error: {describe(error)} |"
            emit(lines, f"| {kind}{'+peepholes' if options else ''}{' (overlap off)' if 'overlap' in settings else ''} | {str(dtype)[6:]} | {verdict} |")
    triton_persistent.configure(overlap=True)
    emit(lines)


def tune_persistent(lines: list[str]) -> None:
    """Tile settings of the persistent kernels at B=32, T=256, H=512, fp16: keep the fastest for gru."""
    from rnnkit.engines.triton import persistent as triton_persistent

    emit(lines, "### Persistent-kernel tile settings at B=32 T=256 H=512, fp16, training step ms\n")
    emit(lines, "| BN (units per program) | BK | warps | gru | lstm |")
    emit(lines, "|---:|---:|---:|---:|---:|")
    best = None
    for BN in (16, 32):
        for BK in (64, 128):
            for warps in (4,):
                triton_persistent.configure(BN=BN, BK=BK, num_warps=warps)
                row = []
                for kind in ("gru", "lstm"):
                    torch.manual_seed(0)
                    module = Recurrent(kind, 512, 512, engine="persistent").cuda().half()
                    x = torch.randn(256, 32, 512, device="cuda", dtype=torch.float16, requires_grad=True)
                    row.append(time_step(module, x, 5))
                emit(lines, f"| {BN} | {BK} | {warps} | {row[0]:.2f} | {row[1]:.2f} |")
                if best is None or row[0] < best[0]:
                    best = (row[0], dict(BN=BN, BK=BK, num_warps=warps))
    triton_persistent.configure(**best[1])
    emit(lines, f"\nkept for the table below: {best[1]}\n")


def cuda_ms(run) -> float:
    """Milliseconds from ``run()``'s first GPU work to its last (CUDA events; waits for the GPU)."""
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    run()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end)


def time_step(module, x, repeats: int) -> float:
    def step():
        out = module(x)[0]
        out.float().sum().backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    return statistics.median(cuda_ms(step) for _ in range(repeats))


def training_steps(lines: list[str], quick: bool) -> None:
    emit(lines, "## 2. Training step, ms (forward + backward), median of repeats\n")
    if TUNE:
        tune_persistent(lines)
    entries = [
        ("torch.nn.LSTM (cuDNN)", lambda H: torch.nn.LSTM(H, H)),
        ("torch.nn.GRU (cuDNN)", lambda H: torch.nn.GRU(H, H)),
        ("rnnkit lstm native", lambda H: Recurrent("lstm", H, H, engine="native")),
        ("rnnkit lstm persistent", lambda H: Recurrent("lstm", H, H, engine="persistent")),
        ("rnnkit gru (course) persistent", lambda H: Recurrent("gru", H, H, engine="persistent")),
        ("rnnkit gru-cudnn native", lambda H: Recurrent("gru-cudnn", H, H, engine="native")),
        ("rnnkit gru-cudnn persistent", lambda H: Recurrent("gru-cudnn", H, H, engine="persistent")),
        ("torch.nn.RNN (cuDNN)", lambda H: torch.nn.RNN(H, H)),
        ("rnnkit rnn native", lambda H: Recurrent("rnn", H, H, engine="native")),
        ("rnnkit rnn persistent", lambda H: Recurrent("rnn", H, H, engine="persistent")),
        ("rnnkit gru-simple persistent", lambda H: Recurrent("gru-simple", H, H, engine="persistent")),
    ]
    if not SHORT:  # the per-step kernels and the torch-op loops: tens to hundreds of ms
        entries += [
            ("rnnkit lstm triton", lambda H: Recurrent("lstm", H, H, engine="triton")),
            ("rnnkit gru (course) triton", lambda H: Recurrent("gru", H, H, engine="triton")),
            ("rnnkit gru-simple triton", lambda H: Recurrent("gru-simple", H, H, engine="triton")),
            ("rnnkit gru-simple fused", lambda H: Recurrent("gru-simple", H, H, engine="fused")),
            ("rnnkit gru (course) fused", lambda H: Recurrent("gru", H, H, engine="fused")),
        ]
    shapes = SHAPES[:2] if quick else SHAPES
    header = "| entry | dtype | " + " | ".join(f"B={B} T={T} H={H}" for B, T, H in shapes) + " |"
    emit(lines, header)
    emit(lines, "|---|---|" + "---:|" * len(shapes))
    for name, make in entries:
        for dname in TRAINING_DTYPES:
            dtype = DTYPES[dname]
            cells = []
            for B, T, H in shapes:
                if ("fused" in name or "triton" in name) and dname != "fp16":  # slow; fused measured before (docs/gpu): 40-230 ms
                    cells.append("")
                    continue
                torch.manual_seed(0)
                try:
                    module = make(H).cuda().to(dtype)
                    x = torch.randn(T, B, H, device="cuda", dtype=dtype, requires_grad=True)
                    cells.append(f"{time_step(module, x, 3 if 'triton' in name or 'fused' in name else 10):.2f}")
                    del module, x
                except (RuntimeError, ValueError) as error:  # an unsupported dtype or engine here
                    cells.append(f"error: {str(error).splitlines()[0][:40]}")
            emit(lines, f"| {name} | {dname} | " + " | ".join(cells) + " |")
    emit(lines)


class LSTMSampler(torch.nn.Module):
    """One token step of an LSTM language model: embedding, cell, output layer, a draw."""

    def __init__(self, vocab: int, H: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, H)
        self.cell = torch.nn.LSTMCell(H, H)
        self.out = torch.nn.Linear(H, vocab)

    def forward(self, token, a, c):
        a, c = self.cell(self.embed(token), (a, c))
        probs = torch.softmax(self.out(a), dim=-1)
        return torch.multinomial(probs, 1)[:, 0], a, c


def sampling(lines: list[str], tokens: int = 2000) -> None:
    emit(lines, f"## 3. Sampling one token at a time, µs per token (B = 1, vocab 10000, {tokens} tokens)\n")
    emit(lines, "| H | dtype | eager | CUDA graph |")
    emit(lines, "|---|---|---:|---:|")
    for H in (512, 1024):
        for dname in ("fp32", "fp16"):
            dtype = DTYPES[dname]
            model = LSTMSampler(10000, H).cuda().to(dtype).eval()
            token = torch.zeros(1, dtype=torch.long, device="cuda")
            a = torch.zeros(1, H, device="cuda", dtype=dtype)
            c = torch.zeros(1, H, device="cuda", dtype=dtype)
            with torch.no_grad():
                for _ in range(20):
                    token, a, c = model(token, a, c)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(tokens):
                    token, a, c = model(token, a, c)
                end.record()
                torch.cuda.synchronize()
                eager = start.elapsed_time(end) * 1e3 / tokens
                # CUDA graph: the same step captured once, replayed with its inputs updated in place
                static = [token.clone(), a.clone(), c.clone()]
                stream = torch.cuda.Stream()
                stream.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(stream):
                    for _ in range(3):
                        model(*static)
                torch.cuda.current_stream().wait_stream(stream)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph):
                    new_token, new_a, new_c = model(*static)
                for _ in range(20):
                    graph.replay()
                torch.cuda.synchronize()
                start.record()
                for _ in range(tokens):
                    graph.replay()
                    static[0].copy_(new_token)
                    static[1].copy_(new_a)
                    static[2].copy_(new_c)
                end.record()
                torch.cuda.synchronize()
                graphed = start.elapsed_time(end) * 1e3 / tokens
            emit(lines, f"| {H} | {dname} | {eager:.1f} | {graphed:.1f} |")
    emit(lines)


def tune_fused_sampler(lines: list[str]) -> None:
    """Tile settings of the fused sampler at H=1024, B=1, fp16, vocab 10000: keep the fastest."""
    from rnnkit.engines.triton import sampling as fused_sampling
    from rnnkit.decoding import SamplingOptions
    from rnnkit.models.language_model import LanguageModel

    emit(lines, "### Fused-sampler tile settings, LSTM H=1024, B=1, fp16, vocab 10000: µs per token, graph replays only\n")
    emit(lines, "| BN | BK | warps | BV | sample BK | sample warps | µs per token |")
    emit(lines, "|---:|---:|---:|---:|---:|---:|---:|")
    torch.manual_seed(0)
    model = LanguageModel(10000, cell="lstm", embedding_size=1024, hidden_size=1024).cuda().half().eval()
    best = None
    for config in [
        dict(BN=8, BK=128, warps=4, BV=64, sample_BK=128, sample_warps=4),
        dict(BN=8, BK=512, warps=8, BV=32, sample_BK=512, sample_warps=8),
        dict(BN=4, BK=512, warps=4, BV=32, sample_BK=512, sample_warps=4),
        dict(BN=4, BK=1024, warps=8, BV=16, sample_BK=1024, sample_warps=8),
        dict(BN=2, BK=1024, warps=4, BV=16, sample_BK=1024, sample_warps=4),
        dict(BN=2, BK=2048, warps=8, BV=8, sample_BK=1024, sample_warps=4),
    ]:
        fused_sampling.configure(**config)
        try:
            sampler = fused_sampling.FusedSampler(model, 1, SamplingOptions(max_length=64), banned=[0])
            sampler.sample(eos_id=-1)
            torch.cuda.synchronize()
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            for _ in range(32):
                sampler.graph.replay()
            end.record()
            torch.cuda.synchronize()
            us = start.elapsed_time(end) * 1e3 / (32 * sampler.K)
            text = f"{us:.1f}"
            if best is None or us < best[0]:
                best = (us, config)
        except Exception as error:  # noqa: BLE001
            text = "error: " + describe(error)[:200]
        emit(lines, "| " + " | ".join(str(v) for v in config.values()) + f" | {text} |")
    if best is not None:
        fused_sampling.configure(**best[1])
        emit(lines, f"\nkept: {best[1]}\n")


def training_throughput(lines: list[str]) -> None:
    """ms per training step over 10 steps run back to back (as a training loop runs them, the host
    queueing work while the GPU computes), next to cuDNN."""
    emit(lines, "## 2b. Training step, ms, 10 steps back to back (no synchronisation between steps)\n")
    entries = [
        ("torch.nn.LSTM (cuDNN)", lambda H: torch.nn.LSTM(H, H)),
        ("rnnkit lstm native", lambda H: Recurrent("lstm", H, H, engine="native")),
        ("rnnkit lstm persistent", lambda H: Recurrent("lstm", H, H, engine="persistent")),
        ("torch.nn.GRU (cuDNN)", lambda H: torch.nn.GRU(H, H)),
        ("rnnkit gru-cudnn native", lambda H: Recurrent("gru-cudnn", H, H, engine="native")),
        ("rnnkit gru-cudnn persistent", lambda H: Recurrent("gru-cudnn", H, H, engine="persistent")),
        ("rnnkit gru (course) persistent", lambda H: Recurrent("gru", H, H, engine="persistent")),
    ]
    emit(lines, "| entry | dtype | " + " | ".join(f"B={B} T={T} H={H}" for B, T, H in SHAPES) + " |")
    emit(lines, "|---|---|" + "---:|" * len(SHAPES))
    for name, make in entries:
        for dname, dtype in DTYPES.items():
            cells = []
            for B, T, H in SHAPES:
                torch.manual_seed(0)
                try:
                    module = make(H).cuda().to(dtype)
                    x = torch.randn(T, B, H, device="cuda", dtype=dtype, requires_grad=True)
                    cells.append(f"{time_back_to_back(module, x, 10):.2f}")
                except Exception as error:  # noqa: BLE001
                    cells.append("error: " + describe(error)[:60])
            emit(lines, f"| {name} | {dname} | " + " | ".join(cells) + " |")
    emit(lines)


def graphed_sampling(lines: list[str], tokens: int = 512) -> None:
    """rnnkit's GraphedSampler on its language model against its eager sampling loop."""
    from rnnkit.decoding import GraphedSampler, SamplingOptions, sample
    from rnnkit.models.language_model import LanguageModel

    from rnnkit.engines.triton.sampling import FusedSampler

    if TUNE:
        tune_fused_sampler(lines)
    emit(lines, "## 4. rnnkit sampling: µs per token, eager loop vs CUDA graph of torch ops vs fused Triton kernels in a CUDA graph (16 tokens per replay), vocab 10000\n")
    emit(lines, "| cell | H | B | dtype | eager | graphed | graphed tokens/s (all rows) | fused | fused tokens/s (all rows) |")
    emit(lines, "|---|---|---:|---|---:|---:|---:|---:|---:|")
    for cell in ("lstm", "gru"):
        for H in (512, 1024):
            for B, dname in ((1, "fp32"), (1, "fp16"), (4, "fp16"), (16, "fp16"), (64, "fp16")):
                dtype = DTYPES[dname]
                torch.manual_seed(0)
                model = LanguageModel(10000, cell=cell, embedding_size=H, hidden_size=H).cuda().to(dtype).eval()
                options = SamplingOptions(max_length=tokens, greedy=False)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                n = 64
                start.record()
                sample(model, B, SamplingOptions(max_length=n), eos_id=-1, banned=[0], device="cuda", fast=False)
                end.record()
                torch.cuda.synchronize()
                eager = start.elapsed_time(end) * 1e3 / n
                try:
                    sampler = GraphedSampler(model, B, options, banned=[0])
                    sampler.sample(eos_id=-1)  # capture
                    torch.cuda.synchronize()
                    start.record()
                    sampler.sample(eos_id=-1)
                    end.record()
                    torch.cuda.synchronize()
                    graphed = start.elapsed_time(end) * 1e3 / tokens
                    start.record()
                    for _ in range(8):
                        sampler.graph.replay()
                    end.record()
                    torch.cuda.synchronize()
                    replay_only = start.elapsed_time(end) * 1e3 / (8 * sampler.K)
                    cell_text = f"{graphed:.1f} ({replay_only:.1f} replays only) | {B * 1e6 / graphed:,.0f}"
                except Exception as error:  # noqa: BLE001 (report, keep measuring the others)
                    cell_text = f"error: {str(error).splitlines()[0][:50]} |"
                fused_text = "| "
                if cell == "lstm":
                    try:
                        fused = FusedSampler(model, B, options, banned=[0])
                        fused.sample(eos_id=-1)  # compile, capture
                        torch.cuda.synchronize()
                        start.record()
                        fused.sample(eos_id=-1)
                        end.record()
                        torch.cuda.synchronize()
                        per_token = start.elapsed_time(end) * 1e3 / tokens
                        start.record()
                        for _ in range(32):  # the decode steps alone, without the host reading the tokens
                            fused.graph.replay()
                        end.record()
                        torch.cuda.synchronize()
                        replay_only = start.elapsed_time(end) * 1e3 / (32 * fused.K)
                        fused_text = f"{per_token:.1f} ({replay_only:.1f} replays only) | {B * 1e6 / per_token:,.0f}"
                    except Exception as error:  # noqa: BLE001
                        fused_text = f"error: {str(error).splitlines()[0][:60]} |"
                emit(lines, f"| {cell} | {H} | {B} | {dname} | {eager:.1f} | {cell_text} | {fused_text} |")
    # the graph samples what the eager loop samples: greedy decoding agrees token for token
    torch.manual_seed(0)
    model = LanguageModel(500, cell="lstm", embedding_size=64, hidden_size=64).cuda().eval()
    eager = sample(model, 4, SamplingOptions(greedy=True, max_length=40), eos_id=-1, device="cuda", fast=False)
    graphed = GraphedSampler(model, 4, SamplingOptions(greedy=True, max_length=40)).sample(eos_id=-1)
    fused = FusedSampler(model, 4, SamplingOptions(greedy=True, max_length=40)).sample(eos_id=-1)
    emit(lines, f"\ngreedy decoding, graphed equals eager: {eager == graphed}; fused equals eager: {fused == eager}\n")
    # the fused sampler's draws follow the model's distribution: output weights zero, bias b_y
    small = LanguageModel(6, cell="lstm", embedding_size=64, hidden_size=64).cuda().eval()
    bias = torch.tensor([0.0, 1.0, 2.0, 0.5, -1.0, 0.0])
    with torch.no_grad():
        small.output.weight.zero_()
        small.output.bias.copy_(bias)
    sampler = FusedSampler(small, 256, SamplingOptions(temperature=1.5, max_length=257), banned=[0])
    draws = torch.tensor([t for row in sampler.sample(eos_id=-1, seed=3) for t in row[1:]])
    expected = torch.softmax(bias.masked_fill(torch.arange(6) == 0, -torch.inf) / 1.5, 0)
    observed = torch.bincount(draws, minlength=6).double() / len(draws)
    emit(lines, f"fused sampler, {len(draws)} draws at temperature 1.5: frequencies {[round(v, 4) for v in observed.tolist()]}, "
         f"softmax(b_y / T) {[round(v, 4) for v in expected.tolist()]}\n")


def precision_training(lines: list[str]) -> None:
    """One training step of a word language model under autocast, through rnnkit's trainer path."""
    from rnnkit.models.language_model import LanguageModel
    from rnnkit.models.losses import token_loss

    emit(lines, "## 5. Language-model training step under autocast (B=64, T=64, vocab 10000), ms\n")
    emit(lines, "| cell (engine) | H | fp32 | bf16 autocast | fp16 autocast |")
    emit(lines, "|---|---|---:|---:|---:|")
    for cell in ("lstm", "gru-cudnn", "gru"):
        for H in (512, 1024):
            torch.manual_seed(0)
            model = LanguageModel(10000, cell=cell, embedding_size=H, hidden_size=H).cuda()
            tokens = torch.randint(3, 10000, (64, 64), device="cuda")
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
            row = []
            for dtype in (None, torch.bfloat16, torch.float16):
                scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None

                def step():
                    with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
                        logits = model(tokens).logits
                        loss, n = token_loss(logits, tokens)
                        loss = loss / n
                    (scaler.scale(loss) if scaler else loss).backward()
                    (scaler.step(optimizer), scaler.update()) if scaler else optimizer.step()
                    optimizer.zero_grad()

                try:
                    for _ in range(3):
                        step()
                    torch.cuda.synchronize()
                    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                    start.record()
                    for _ in range(5):
                        step()
                    end.record()
                    torch.cuda.synchronize()
                    row.append(f"{start.elapsed_time(end) / 5:.2f}")
                except Exception as error:  # noqa: BLE001
                    row.append(f"error: {str(error).splitlines()[0][:40]}")
            engine = Recurrent(cell, 4, 4).engine_for(torch.device("cuda")).name
            emit(lines, f"| {cell} ({engine}) | {H} | " + " | ".join(row) + " |")
    emit(lines)


def native_overhead(lines: list[str]) -> None:
    """rnnkit's native engine next to torch.nn.LSTM (both cuDNN), with the weights handed to torch
    as one flat buffer or as separate tensors; interleaved, best of two rounds."""
    from rnnkit.engines import native

    emit(lines, "## 6. rnnkit lstm native against torch.nn.LSTM, ms per training step: synchronised each step / 10 back to back\n")
    emit(lines, "| dtype | B T H | torch.nn.LSTM | native, one flat weight buffer | native, separate weights |")
    emit(lines, "|---|---|---:|---:|---:|")
    cases = [("fp16", shape) for shape in SHAPES] + [("bf16", SHAPES[1]), ("fp32", SHAPES[1])]
    for dname, (B, T, H) in cases:
        dtype = DTYPES[dname]
        torch.manual_seed(0)
        ours = Recurrent("lstm", H, H, engine="native").cuda().to(dtype)
        theirs = torch.nn.LSTM(H, H).cuda().to(dtype)
        x = torch.randn(T, B, H, device="cuda", dtype=dtype, requires_grad=True)
        best = {}
        for _ in range(2):
            for name, module, flat in (("theirs", theirs, True), ("flat", ours, True), ("separate", ours, False)):
                native.FLAT_WEIGHTS["cuda"] = flat
                synced, back_to_back = time_step(module, x, 5), time_back_to_back(module, x, 10)
                old = best.get(name, (1e9, 1e9))
                best[name] = (min(old[0], synced), min(old[1], back_to_back))
        native.FLAT_WEIGHTS["cuda"] = True
        cells = [f"{best[k][0]:.2f} / {best[k][1]:.2f}" for k in ("theirs", "flat", "separate")]
        emit(lines, f"| {dname} | {B} {T} {H} | " + " | ".join(cells) + " |")
    emit(lines)


def time_back_to_back(module, x, steps: int) -> float:
    """ms per training step over ``steps`` steps queued back to back, as a training loop runs them."""
    def steps_in_a_row():
        for _ in range(steps):
            module(x)[0].float().sum().backward()

    for _ in range(2):
        module(x)[0].float().sum().backward()
    torch.cuda.synchronize()
    return cuda_ms(steps_in_a_row) / steps


def tune_gru(lines: list[str]) -> None:
    """Settings of the persistent gru at B=32 T=256 H=512 fp16 (tiles; the work between arriving at a
    barrier and waiting at it, ``overlap``), each next to cuDNN's GRU timed right after it in the same
    process: synchronised each step / 10 back to back. The default comes back at the end."""
    import traceback

    from rnnkit.engines.triton import persistent as triton_persistent

    emit(lines, "### Persistent gru, B=32 T=256 H=512 fp16: ms per training step, synchronised / back to back\n")
    emit(lines, "| settings | persistent gru | torch.nn.GRU (cuDNN) | ratio (back to back) |")
    emit(lines, "|---|---:|---:|---:|")
    torch.manual_seed(0)
    x = torch.randn(256, 32, 512, device="cuda", dtype=torch.float16, requires_grad=True)
    cudnn = torch.nn.GRU(512, 512).cuda().half()
    kept = dict(triton_persistent.CONFIG)
    emit(lines, f"default: {kept}; each row changes only what it names\n")
    for changes in [
        dict(overlap=False), dict(), dict(BN=32, num_warps=8), dict(BN=32, num_warps=4), dict(BK=256, num_warps=8),
        dict(BK=64, num_warps=2), dict(num_stages=1), dict(BN=32, BK=256, num_warps=8),
    ]:  # fmt: skip
        config = {**kept, **changes}
        triton_persistent.configure(**config)
        try:
            module = Recurrent("gru", 512, 512, engine="persistent").cuda().half()
            ours = (time_step(module, x, 7), time_back_to_back(module, x, 10))
            theirs = (time_step(cudnn, x, 7), time_back_to_back(cudnn, x, 10))
            emit(lines, f"| {changes or 'default'} | {ours[0]:.2f} / {ours[1]:.2f} | {theirs[0]:.2f} / {theirs[1]:.2f} | {theirs[1] / ours[1]:.2f} |")
        except Exception as error:  # noqa: BLE001
            emit(lines, f"| {changes or 'default'} | error: {describe(error)[:200]} | | |")
            traceback.print_exc()
    triton_persistent.configure(**kept)
    emit(lines)


def sampling_aim(lines: list[str], tokens: int = 512) -> None:
    """The issue's sampling aim alone: µs per token, LSTM language model, H=1024, B=1, fp16, vocab
    10000. A reused fused sampler's whole ``sample()`` call, its decode loop's graph replays alone,
    and the public ``decoding.sample`` (a new sampler per call: setup and capture included)."""
    from rnnkit.decoding import SamplingOptions, sample
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(10000, cell="lstm", embedding_size=1024, hidden_size=1024).cuda().half().eval()
    options = SamplingOptions(max_length=tokens)
    sampler = FusedSampler(model, 1, options)
    sampler.sample(eos_id=-1)  # compile, capture

    def per_token(run, repeats: int = 5, count: int = tokens) -> float:
        return statistics.median(cuda_ms(run) for _ in range(repeats)) * 1e3 / count

    whole = per_token(lambda: sampler.sample(eos_id=-1))
    replays = per_token(lambda: [sampler.graph.replay() for _ in range(32)], count=32 * sampler.K)
    public = per_token(lambda: sample(model, 1, options, eos_id=-1, device="cuda"), repeats=3)
    emit(lines, f"### Sampling aim (≤ 20 µs per token at H=1024, B=1): fused sampler, fp16, {tokens} tokens per call, median\n")
    emit(lines, "| reused sampler, whole sample() call | its decode loop (graph replays alone) | decoding.sample() (new sampler per call) |")
    emit(lines, "|---:|---:|---:|")
    emit(lines, f"| {whole:.1f} | {replays:.1f} | {public:.1f} |\n")


try:  # the kernel of the "barrier" section (GPU machines have Triton)
    import triton
    import triton.language as tl

    from rnnkit.engines.triton.persistent import _grid_barrier

    @triton.jit
    def _barriers_only(SYNC, T):
        programs = tl.num_programs(0)
        for t in range(0, T):
            _grid_barrier(SYNC, programs * (t + 1))

except ImportError:
    _barriers_only = None


def barrier_cost(lines: list[str]) -> None:
    """µs per grid barrier of the persistent kernels: a kernel that only meets at the barrier, 4096
    times, with as many programs as the persistent gru has at n_a = 256, 512, 1024 (16 units each)
    and with one per multiprocessor. The gru meets 4 times a step (2 forward, 2 backward), so
    4 × T × this is the part of a training step spent at barriers when the programs arrive together."""
    sms = torch.cuda.get_device_properties(0).multi_processor_count
    emit(lines, "### Grid barrier, µs each (4096 in one launch, median of 5 launches)\n")
    emit(lines, "| programs | µs per barrier | × 4 × 256 steps, ms |")
    emit(lines, "|---:|---:|---:|")
    T = 4096
    for programs in (16, 32, 64, sms):
        sync = torch.zeros(1, dtype=torch.int32, device="cuda")
        times = [cuda_ms(lambda: _barriers_only[(programs,)](sync.zero_(), T, num_warps=4)) * 1e3 / T for _ in range(6)]
        us = statistics.median(times[1:])  # the first launch compiles
        emit(lines, f"| {programs} | {us:.2f} | {us * 4 * 256 / 1e3:.2f} |")
    emit(lines)


def sampling_check(lines: list[str]) -> None:
    """The greedy cross-checks of section 4 alone, with the traceback of any failure."""
    import traceback

    from rnnkit.decoding import GraphedSampler, SamplingOptions, sample
    from rnnkit.engines.triton.sampling import FusedSampler
    from rnnkit.models.language_model import LanguageModel

    torch.manual_seed(0)
    model = LanguageModel(500, cell="lstm", embedding_size=64, hidden_size=64).cuda().eval()
    options = SamplingOptions(greedy=True, max_length=40)
    eager = sample(model, 4, options, eos_id=-1, device="cuda", fast=False)
    gru = LanguageModel(500, cell="gru", embedding_size=64, hidden_size=64).cuda().eval()  # on the persistent kernels
    gru_eager = sample(gru, 4, options, eos_id=-1, device="cuda", fast=False)
    checks = (
        ("lstm, fused", lambda: FusedSampler(model, 4, options).sample(eos_id=-1) == eager),
        ("lstm, graphed", lambda: GraphedSampler(model, 4, options).sample(eos_id=-1) == eager),
        (f"gru ({gru.recurrent.engine_for(torch.device('cuda')).name}), graphed", lambda: GraphedSampler(gru, 4, options).sample(eos_id=-1) == gru_eager),
    )
    for name, check in checks:
        try:
            emit(lines, f"greedy decoding, {name} equals eager: {check()}")
        except Exception as error:  # noqa: BLE001
            emit(lines, f"greedy decoding, {name}: error {describe(error)}")
            traceback.print_exc()
    # a reused fused sampler: another seed, another random stream (the seed is not a captured
    # argument). Output weights zero: the draws after the first depend on the random stream only.
    flat = LanguageModel(40, cell="lstm", embedding_size=16, hidden_size=64).cuda().eval()
    with torch.no_grad():
        flat.output.weight.zero_()
    sampler = FusedSampler(flat, 4, SamplingOptions(max_length=40))
    first, again, other = (sampler.sample(eos_id=-1, seed=seed) for seed in (1, 1, 2))
    emit(lines, f"fused sampler reused: seed 1 twice equal: {first == again}; seed 2 differs after the first token: "
         f"{[r[1:] for r in first] != [r[1:] for r in other]}")
    emit(lines)


SECTIONS = {"correctness": correctness, "training": None, "sampling": sampling, "graphed": graphed_sampling, "precision": precision_training, "native": native_overhead, "throughput": training_throughput, "tune-gru": tune_gru, "sampling-check": sampling_check, "barrier": barrier_cost, "sampling-aim": sampling_aim}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two shapes only")
    parser.add_argument("--tune", action="store_true", help="sweep the tile settings of the Triton kernels first")
    parser.add_argument("--short", action="store_true", help="leave out the slow engines")
    parser.add_argument("--dtypes", nargs="+", choices=list(DTYPES), help="the training table's dtypes (default all)")
    parser.add_argument("--out", help="also write the results (markdown) to this file")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="which parts to run (default all)")
    args = parser.parse_args()
    global TUNE, SHORT, OUT_FILE
    TUNE, SHORT = args.tune, args.short
    if args.dtypes:
        TRAINING_DTYPES[:] = args.dtypes
    if args.out:
        open(args.out, "w").close()
        OUT_FILE = args.out
    if not torch.cuda.is_available():
        sys.exit("benchmarks/gpu.py needs a CUDA device")
    lines: list[str] = []
    props = torch.cuda.get_device_properties(0)
    emit(lines, f"# GPU results: {props.name}, {props.multi_processor_count} SMs, torch {torch.__version__}, "
         f"CUDA {torch.version.cuda}, cuDNN {torch.backends.cudnn.version()}\n")
    emit(lines, "Produced by `PYTHONPATH=src python benchmarks/gpu.py`.\n")
    for name in args.sections:
        section = SECTIONS[name] or (lambda ls: training_steps(ls, args.quick))
        try:
            section(lines)
        except Exception as error:  # keep what the other sections measured
            emit(lines, f"section failed: {type(error).__name__}: {error}\n")


if __name__ == "__main__":
    main()
