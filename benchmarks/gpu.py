"""One script for a GPU machine: check every engine against the reference on CUDA, then time them
next to cuDNN, then time one-token sampling steps.

    PYTHONPATH=src python benchmarks/gpu.py [--quick] [--out results.md]

1. Correctness: every cell × engine (fused with its torch-op loops, triton, native = cuDNN) against the
   reference engine on the GPU, float64, padded batch, 2 layers, both directions: the largest
   difference in outputs, final states and all gradients.
2. Training step (forward + backward of outputs.sum()) in ms, CUDA events, median of repeats, at
   (B, T, H) in {(8,256,256), (32,256,512), (64,256,1024), (16,1024,768)}, n_x = H, in fp32, bf16
   and fp16: torch.nn.LSTM / torch.nn.GRU (cuDNN) next to rnnkit's engines.
3. Sampling: microseconds per generated token for an LSTM language-model step (embedding, cell,
   output layer, softmax, multinomial draw, feeding the token back), B = 1, H in {512, 1024},
   in eager PyTorch and replayed from a CUDA graph.
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


def emit(lines: list[str], text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


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
            results = []
            for layer in (reference, other):
                out, final = layer(x, lengths=lengths)
                finals = final if isinstance(final, tuple) else (final,)
                loss = out.pow(2).sum() + sum(f.sum() for f in finals)
                results.append([out, *finals, *torch.autograd.grad(loss, [x, *layer.parameters()])])
            diff = max((a - b).abs().max().item() for a, b in zip(*results))
            emit(lines, f"| {kind}{'+peepholes' if options else ''} | {name} | {diff:.1e} |")
    emit(lines)


def time_step(module, x, repeats: int) -> float:
    def step():
        out = module(x)[0]
        out.float().sum().backward()

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def training_steps(lines: list[str], quick: bool) -> None:
    emit(lines, "## 2. Training step, ms (forward + backward), median of repeats\n")
    entries = [
        ("torch.nn.LSTM (cuDNN)", lambda H: torch.nn.LSTM(H, H)),
        ("torch.nn.GRU (cuDNN)", lambda H: torch.nn.GRU(H, H)),
        ("rnnkit lstm native", lambda H: Recurrent("lstm", H, H, engine="native")),
        ("rnnkit lstm fused", lambda H: Recurrent("lstm", H, H, engine="fused")),
        ("rnnkit gru-cudnn native", lambda H: Recurrent("gru-cudnn", H, H, engine="native")),
        ("rnnkit lstm triton", lambda H: Recurrent("lstm", H, H, engine="triton")),
        ("rnnkit gru (course) fused", lambda H: Recurrent("gru", H, H, engine="fused")),
        ("rnnkit gru (course) triton", lambda H: Recurrent("gru", H, H, engine="triton")),
        ("rnnkit gru-cudnn triton", lambda H: Recurrent("gru-cudnn", H, H, engine="triton")),
        ("rnnkit gru (course) reference", lambda H: Recurrent("gru", H, H, engine="reference")),
    ]
    shapes = SHAPES[:2] if quick else SHAPES
    header = "| entry | dtype | " + " | ".join(f"B={B} T={T} H={H}" for B, T, H in shapes) + " |"
    emit(lines, header)
    emit(lines, "|---|---|" + "---:|" * len(shapes))
    for name, make in entries:
        for dname, dtype in DTYPES.items():
            cells = []
            for B, T, H in shapes:
                if "reference" in name and (T > 256 or dname != "fp32"):
                    cells.append("")
                    continue
                torch.manual_seed(0)
                try:
                    module = make(H).cuda().to(dtype)
                    x = torch.randn(T, B, H, device="cuda", dtype=dtype, requires_grad=True)
                    cells.append(f"{time_step(module, x, 3 if 'reference' in name else 10):.2f}")
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


def graphed_sampling(lines: list[str], tokens: int = 512) -> None:
    """rnnkit's GraphedSampler on its language model against its eager sampling loop."""
    from rnnkit.decoding import GraphedSampler, SamplingOptions, sample
    from rnnkit.models.language_model import LanguageModel

    emit(lines, "## 4. rnnkit sampling: µs per token, eager loop vs CUDA graph (16 tokens per replay), vocab 10000\n")
    emit(lines, "| cell | H | B | dtype | eager | graphed | graphed tokens/s (all rows) |")
    emit(lines, "|---|---|---:|---|---:|---:|---:|")
    for cell in ("lstm", "gru"):
        for H in (512, 1024):
            for B, dname in ((1, "fp32"), (1, "fp16"), (64, "fp16")):
                dtype = DTYPES[dname]
                torch.manual_seed(0)
                model = LanguageModel(10000, cell=cell, embedding_size=H, hidden_size=H).cuda().to(dtype).eval()
                options = SamplingOptions(max_length=tokens, greedy=False)
                torch.cuda.synchronize()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                n = 64
                start.record()
                sample(model, B, SamplingOptions(max_length=n), eos_id=-1, banned=[0], device="cuda")
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
                    cell_text = f"{graphed:.1f} | {B * 1e6 / graphed:,.0f}"
                except Exception as error:  # noqa: BLE001 (report, keep measuring the others)
                    cell_text = f"error: {str(error).splitlines()[0][:50]} |"
                emit(lines, f"| {cell} | {H} | {B} | {dname} | {eager:.1f} | {cell_text} |")
    # the graph samples what the eager loop samples: greedy decoding agrees token for token
    torch.manual_seed(0)
    model = LanguageModel(500, cell="lstm", embedding_size=64, hidden_size=64).cuda().eval()
    eager = sample(model, 4, SamplingOptions(greedy=True, max_length=40), eos_id=-1, device="cuda")
    graphed = GraphedSampler(model, 4, SamplingOptions(greedy=True, max_length=40)).sample(eos_id=-1)
    emit(lines, f"\ngreedy decoding, graphed equals eager: {eager == graphed}\n")


def precision_training(lines: list[str]) -> None:
    """One training step of a word language model under autocast, through rnnkit's trainer path."""
    from rnnkit.models.language_model import LanguageModel, token_loss

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
                        logits, _ = model(tokens)
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


SECTIONS = {"correctness": correctness, "training": None, "sampling": sampling, "graphed": graphed_sampling, "precision": precision_training}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="two shapes only")
    parser.add_argument("--out", help="also write the results (markdown) to this file")
    parser.add_argument("--sections", nargs="+", choices=list(SECTIONS), default=list(SECTIONS), help="which parts to run (default all)")
    args = parser.parse_args()
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
        if args.out:
            with open(args.out, "w") as f:
                f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
