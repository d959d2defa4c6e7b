"""Language models: the model's equations and loss, the task's training and exact resume. (The
vocabulary, tokenizers, text, batching and decoding have their own files: test_data_*.py,
test_decoding.py.)"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnkit.decoding import SamplingOptions
from rnnkit.models import build_model
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.losses import token_loss
from rnnkit.tasks.language_model import LanguageModelTask, LMDataConfig
from rnnkit.training import RunDir, Trainer, TrainingConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# -- the model ------------------------------------------------------------------------------------------
def tiny_model(vocab_size=7, cell="gru", **kwargs):
    torch.manual_seed(0)
    return LanguageModel(vocab_size, cell=cell, embedding_size=5, hidden_size=8, **kwargs).double()


def test_first_input_is_zero_and_later_inputs_are_previous_tokens():
    model = tiny_model()
    tokens = torch.tensor([[3, 4], [5, 6], [2, 2]])
    x = model.inputs(tokens)
    assert torch.all(x[0] == 0)  # x<1> = 0
    torch.testing.assert_close(x[1:], model.embedding(tokens[:-1]))  # x<t> = y<t-1>


def test_prediction_at_t_ignores_tokens_from_t_on():
    model = tiny_model(cell="lstm")
    tokens = torch.tensor([[3], [4], [5], [6]])
    changed = tokens.clone()
    changed[2:] = torch.tensor([[1], [1]])
    a = model(tokens).logits
    b = model(changed).logits
    torch.testing.assert_close(a[:3], b[:3])  # ŷ<3> depends on y<1..2> only
    assert not torch.allclose(a[3], b[3])


def test_bidirectional_language_model_is_refused():
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        LanguageModel(10, bidirectional=True)


def test_summed_loss_equals_per_step_losses_added_by_hand():
    model = tiny_model()
    tokens = torch.tensor([[3, 4], [5, 2], [2, 0]])  # second sequence padded after <EOS>
    logits = model(tokens, lengths=torch.tensor([3, 2])).logits
    total, count = token_loss(logits, tokens)
    by_hand = 0.0
    for t, b in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]:
        by_hand += -F.log_softmax(logits[t, b], dim=-1)[tokens[t, b]]
    assert count == 5
    torch.testing.assert_close(total, by_hand.to(total.dtype))


def test_tied_embeddings_share_one_matrix():
    model = LanguageModel(11, embedding_size=6, hidden_size=6, tie_embeddings=True)
    assert model.output.weight is model.embedding.weight
    with pytest.raises(ValueError, match="--tie-embeddings needs"):
        LanguageModel(11, embedding_size=6, hidden_size=8, tie_embeddings=True)
    assert LanguageModel(11, embedding_size=6, hidden_size=8, head_sizes=[6], tie_embeddings=True).head.output_size == 6


# -- training -------------------------------------------------------------------------------------------
def write(path: Path, lines: list[str]) -> str:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def make_task(tmp_path, **data):
    names = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon", "kara", "leo"] * 3
    config = LMDataConfig(train=[write(tmp_path / "names.txt", names)], batch_size=8, **data)
    return LanguageModelTask.prepare(config)[0]


def test_tiny_model_overfits_a_tiny_corpus(tmp_path):
    text = ["the cat sat on the mat", "the dog sat on the log"]
    config = LMDataConfig(train=[write(tmp_path / "t.txt", text)], valid=write(tmp_path / "v.txt", text), level="word", batch_size=2)
    task, _ = LanguageModelTask.prepare(config)
    torch.manual_seed(0)
    model = build_model("lm", task.model_config({"cell": "lstm", "embedding_size": 16, "hidden_size": 32}))
    run = RunDir(tmp_path / "run")
    summary = Trainer(task, model, TrainingConfig(max_steps=150, lr=1e-2, schedule="constant", progress=False, eval_every=150), run).fit()
    # after "the" comes cat or dog (1 bit); every other token is determined: about ln(2) / 7 per token
    assert summary["best_valid_criterion"] < 0.2  # the validation loss per token
    assert run.file("loss_curve.png").exists() and run.file("metrics.csv").exists()


@pytest.mark.parametrize("batching,ema", [("sentences", None), ("stream", None), ("sentences", 0.9)])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, batching, ema):
    from safetensors.torch import load_file

    def train(run_dir, resume=False, **stop):
        task = make_task(tmp_path, batching=batching, bptt=5)
        torch.manual_seed(99 if resume else 0)  # the global RNG before resuming must not matter
        model = build_model("lm", task.model_config({"cell": "lstm", "embedding_size": 8, "hidden_size": 16, "dropout": 0.3}))
        config = TrainingConfig(max_steps=25, eval_every=10, lr=1e-2, progress=False, ema=ema, **stop)
        return Trainer(task, model, config, RunDir(run_dir)).fit(resume=resume)

    train(tmp_path / "whole")
    stopped = train(tmp_path / "parts", stop_at_step=13)
    assert not stopped["finished"] and stopped["steps"] == 13
    train(tmp_path / "parts", resume=True)
    for name in ["last", "ema"] if ema else ["last"]:
        a, b = load_file(tmp_path / "whole" / f"{name}.safetensors"), load_file(tmp_path / "parts" / f"{name}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ema_evaluates_the_moving_average_of_the_weights(tmp_path):
    from safetensors.torch import load_file

    task = make_task(tmp_path)
    torch.manual_seed(0)
    model = build_model("lm", task.model_config({"cell": "gru", "embedding_size": 8, "hidden_size": 8}))
    seen = []  # the weights each training step starts from: θ0 .. θ(N-1)
    model.register_forward_pre_hook(lambda m, args: seen.append({k: v.detach().clone() for k, v in m.state_dict().items()}) if m.training else None)
    decay, steps = 0.8, 6
    Trainer(task, model, TrainingConfig(max_steps=steps, eval_every=steps, lr=1e-2, progress=False, ema=decay), RunDir(tmp_path / "run")).fit()
    last = load_file(tmp_path / "run" / "last.safetensors")  # θN
    thetas = [*seen[1:], last]  # θ1 .. θN
    assert len(thetas) == steps
    expected = dict(thetas[0])  # the average starts as θ1, then θ̄ ← decay θ̄ + (1 - decay) θ
    for theta in thetas[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * theta[k] for k in expected}
    best = load_file(tmp_path / "run" / "best.safetensors")  # evaluated at the last step: the average
    for k in best:
        torch.testing.assert_close(best[k], expected[k])
    assert not all(torch.equal(best[k], last[k]) for k in best)
    with pytest.raises(ValueError, match="ema"):
        Trainer(task, model, TrainingConfig(max_steps=1, progress=False, ema=1.0), RunDir(tmp_path / "bad")).fit()


def test_a_time_limit_ends_training_validated_and_tested_while_a_pause_does_not(tmp_path):
    text = ["the cat sat on the mat", "the dog sat on the log"]

    def train(run_dir, **stop):
        config = LMDataConfig(train=[write(tmp_path / "t.txt", text)], valid=write(tmp_path / "v.txt", text), test=write(tmp_path / "x.txt", text), level="word", batch_size=1)
        task, _ = LanguageModelTask.prepare(config)
        model = build_model("lm", task.model_config({"cell": "gru", "embedding_size": 8, "hidden_size": 8}))
        return Trainer(task, model, TrainingConfig(max_steps=50, eval_every=40, progress=False, **stop), RunDir(run_dir)).fit()

    budget = train(tmp_path / "budget", time_limit=1e-9)  # spent after the first step
    assert not budget["finished"] and "time limit" in budget["stopped"] and budget["steps"] == 1
    assert "best_valid_criterion" in budget and budget["test_count"] > 0  # validated at its last step, then tested
    paused = train(tmp_path / "paused", stop_at_step=1)
    assert not paused["finished"] and "best_valid_criterion" not in paused and "test_loss" not in paused


def test_checkpoint_made_on_one_device_loads_on_the_cpu(tmp_path):
    task = make_task(tmp_path)
    model = build_model("lm", task.model_config({"cell": "gru", "embedding_size": 8, "hidden_size": 16}))
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    run.save_weights("best", model)
    again = build_model("lm", task.model_config({"cell": "gru", "embedding_size": 8, "hidden_size": 16})).to("cpu")
    run.load_weights("best", again)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))


@pytest.mark.skipif(not (SHARED / "ptb" / "ptb.valid.txt").exists(), reason="shared PTB data absent")
def test_reads_the_real_penn_treebank_with_its_unk_marker(tmp_path):
    config = LMDataConfig(train=[str(SHARED / "ptb" / "ptb.valid.txt")], valid=str(SHARED / "ptb" / "ptb.test.txt"), level="whitespace", batching="stream")
    task, record = LanguageModelTask.prepare(config)
    assert record["lines"] == {"train": 3370, "valid": 3761}
    ids = task.splits["valid"].ids[:].tolist()  # the prepared corpus
    assert len(ids) == 82430  # 78,669 words + 3,761 <EOS>, as the data README says
    assert "<unk>" not in task.vocab and task.vocab.unk_id in ids


def test_a_run_trained_on_a_gpu_loads_samples_and_resumes_on_the_cpu(tmp_path):
    """tests/fixtures/gpu_lm_run.tgz: a tiny LSTM language model trained for 30 of 40 steps on an
    H200 (rnnkit train lm ... --device cuda --max-steps 40 --stop-at-step 30); its optimizer state
    and RNG states were saved from the GPU."""
    import json
    import tarfile

    from rnnkit.runs import open_run, resume

    with tarfile.open(Path(__file__).parent / "fixtures" / "gpu_lm_run.tgz") as archive:
        archive.extractall(tmp_path, filter="data")
    run = tmp_path / "gpurun"
    config = json.loads((run / "config.json").read_text())
    assert config["training"]["device"] == "cuda"
    config["data"]["train"] = [str(run / "words.txt")]  # the training file travelled with the run
    config["split"]["train_files"] = config["data"]["train"]
    (run / "config.json").write_text(json.dumps(config))
    task, model, _, device = open_run(run, device="cpu")
    assert device.type == "cpu" and all(p.device.type == "cpu" for p in model.parameters())
    samples = task.generate(model, 3, SamplingOptions(max_length=10), seed=0)
    assert len(samples) == 3
    _, summary = resume(run, {"device": "cpu", "progress": False})
    assert summary["finished"] and summary["steps"] == 40




# -- bfloat16 autocast on the CPU --------------------------------------------------------------------------
def test_bf16_on_the_cpu_runs_the_output_layer_in_bfloat16_and_keeps_float32_weights(tmp_path, monkeypatch):
    """--precision bf16 on a CPU with native bfloat16: in training the output layer's product runs in
    bfloat16 (its logits are bfloat16), the weights and their gradients stay float32 (autocast keeps
    no bfloat16 copy), and ten steps land close to float32's from the same seed, but not on them."""
    from rnnkit.training import trainer

    monkeypatch.setattr(trainer, "cpu_native_bfloat16", lambda: True)  # which CPU runs the test must not matter
    task = make_task(tmp_path)

    def train(precision):
        torch.manual_seed(0)
        model = build_model("lm", task.model_config({"cell": "lstm", "embedding_size": 8, "hidden_size": 16}))
        logits = []
        model.output.register_forward_hook(lambda module, inputs, out: logits.append(out.dtype) if module.training else None)
        config = TrainingConfig(max_steps=10, lr=1e-2, schedule="constant", progress=False, precision=precision)
        Trainer(task, model, config, RunDir(tmp_path / precision)).fit()
        assert all(p.dtype == torch.float32 and (p.grad is None or p.grad.dtype == torch.float32) for p in model.parameters())
        return set(logits), task.evaluate(model, "valid", "cpu")["loss"]

    dtypes32, loss32 = train("fp32")
    dtypes16, loss16 = train("bf16")
    assert dtypes32 == {torch.float32} and dtypes16 == {torch.bfloat16}
    # bfloat16 keeps 8 bits of mantissa: the losses differ, by far less than training changed them
    assert loss16 != loss32 and abs(loss16 - loss32) < 0.02 * loss32


@pytest.mark.parametrize("precision,native,reason", [
    ("bf16", False, r"^precision bf16 \(autocast\) needs a CPU with native bfloat16 \(AVX512_BF16 or AMX\).*slower"),
    ("fp16", True, r"^precision fp16 \(autocast\) is for CUDA devices \(on a CPU use bf16\); this run is on cpu$"),
])  # fmt: skip
def test_cpu_precisions_that_would_not_help_are_refused_in_one_line_before_the_run_exists(tmp_path, monkeypatch, precision, native, reason):
    from rnnkit.errors import UsageError
    from rnnkit.training import trainer

    monkeypatch.setattr(trainer, "cpu_native_bfloat16", lambda: native)
    task = make_task(tmp_path)
    model = build_model("lm", task.model_config({"cell": "gru", "embedding_size": 4, "hidden_size": 4}))
    with pytest.raises(UsageError, match=reason):
        Trainer(task, model, TrainingConfig(max_steps=1, progress=False, precision=precision), RunDir(tmp_path / "run")).fit()
    assert not (tmp_path / "run" / "config.json").exists()


def test_stream_evaluation_scores_every_token_the_last_column_reading_on_into_the_rest(tmp_path):
    text = ["the cat sat on the mat", "a dog sat on a log", "the end"]  # 17 tokens with the line ends
    config = LMDataConfig(train=[write(tmp_path / "t.txt", text)], valid=write(tmp_path / "v.txt", text), level="word",
                          batching="stream", line_breaks="token", batch_size=2, bptt=4, eval_batch_size=4)  # fmt: skip
    task, _ = LanguageModelTask.prepare(config)
    torch.manual_seed(0)
    model = build_model("lm", task.model_config({"cell": "lstm", "embedding_size": 5, "hidden_size": 8})).double().eval()
    ids = task.splits["valid"].ids[0 : len(task.splits["valid"].ids)].tolist()  # a TokenFile is read by slices
    assert len(ids) % 4 != 0  # some tokens lie after the last of the 4 columns
    result = task.evaluate_examples(model, task.splits["valid"], "cpu")
    assert result["count"] == len(ids)
    rows, expected = len(ids) // 4, 0.0
    for b in range(4):  # each column read alone from a zero state, the last one on to the end of the text
        column = torch.tensor(ids[b * rows : (b + 1) * rows if b < 3 else len(ids)])[:, None]  # (T, 1)
        expected += token_loss(model(column).logits, column, task.vocab.pad_id)[0].item()
    assert abs(result["loss"] * result["count"] - expected) < 1e-9 * expected


def test_score_names_the_characters_a_bpe_run_reads_as_unk(tmp_path, capsys):
    """A BPE run cuts a character its alphabet lacks to <UNK> itself: score showed '<UNK>' rows with
    nothing to tell which characters they were."""
    pytest.importorskip("tokenizers")
    from rnnkit.cli import main

    (tmp_path / "t.txt").write_text("the cat sat on the mat\nthe dog sat on the log\n" * 20)
    assert main(["train", "lm", str(tmp_path / "t.txt"), "--level", "bpe", "--bpe-vocab", "40", "--hidden-size", "8",
                 "--max-steps", "1", "--no-progress", "--run", str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["score", str(tmp_path / "run"), "--json", "the ☃ cat"]) == 0
    assert json.loads(capsys.readouterr().out)["unknown_characters"] == ["☃"]
    assert main(["score", str(tmp_path / "run"), "the cat"]) == 0
    assert "no piece for" not in capsys.readouterr().out


def test_text_segmented_by_another_tool_is_named_at_the_levels_that_cut_it_again(tmp_path, capsys):
    """SentencePiece pieces trained at the word level gave samples as "▁ two ▁ men", unsaid."""
    from rnnkit.tasks.language_model import say_if_presegmented, LMDataConfig

    path = tmp_path / "sp.txt"
    path.write_text("\u2581two \u2581men \u2581are\n\u2581a \u2581dog\n" * 30)
    for level, said in (("word", True), ("bpe", True), ("whitespace", False), ("char", False)):
        say_if_presegmented(LMDataConfig(train=[str(path)], level=level))
        assert ("looks segmented by SentencePiece" in capsys.readouterr().err) == said, level
    plain = tmp_path / "plain.txt"
    plain.write_text("two men are\na dog\n" * 30)
    say_if_presegmented(LMDataConfig(train=[str(plain), str(path)], valid=str(path), level="word"))  # any file, not the first only
    assert capsys.readouterr().err.count("looks segmented by SentencePiece") == 2


def test_a_held_out_stream_split_too_small_to_evaluate_is_refused_before_training(tmp_path, capsys):
    """A blank line drawn as the whole test split (one line-break token) let a stream run train to
    its end and fail at the test, at every resume: a run that could never finish."""
    from rnnkit.cli import main

    path = tmp_path / "poems.txt"
    path.write_text("Roses are red\n\n\nViolets are blue\n")
    run = tmp_path / "run"
    code = main(["train", "lm", str(path), "--batching", "stream", "--line-breaks", "token", "--split", "0.25", "0.25", "--split-seed", "0",
                 "--batch-size", "1", "--bptt", "4", "--hidden-size", "4", "--epochs", "1", "--no-progress", "--run", str(run)])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "split): 1 token(s), too few for 1 parallel stream(s)" in err and not run.exists(), err
    from rnnkit.data.text import split_sizes

    assert split_sizes(3, 0.05, 0.05) == (1, 1)  # each split gets a line, and that is said
    assert "3 lines split 1/1/1 into train/valid/test: 67% held out (--split asks 10%" in capsys.readouterr().err


def test_a_runs_seen_lines_file_missing_or_cut_short_is_named_not_taken_for_none(tmp_path, capsys):
    """Without seen.u64 every sample was marked novel, silently; cut to a length that is not whole
    8-byte keys, every verb of the run ended in numpy's traceback (score too, which needs no keys)."""
    from rnnkit.cli import main

    (tmp_path / "n.txt").write_text("anna\nbob\ncarla\ndave\n" * 10)
    run = tmp_path / "run"
    assert main(["train", "lm", str(tmp_path / "n.txt"), "--hidden-size", "8", "--max-steps", "1", "--no-progress", "--run", str(run)]) == 0
    assert not [p.name for p in run.iterdir() if p.name.endswith((".partial", ".tmp"))]
    keys = (run / "seen.u64").read_bytes()
    assert len(keys) >= 16  # at least two keys, so that their order says something
    for damage, message in ((keys[:12], r"seen.u64: damaged \(12 bytes, not whole 8-byte keys"), (b"", r"seen.u64: damaged \(empty, for"),
                            (bytes(len(keys)), r"seen.u64: damaged \(its keys .* not in increasing order"),  # zero-filled: all "novel"
                            (None, r"seen.u64: missing; is .* a complete rnnkit run")):  # fmt: skip
        if damage is None:
            (run / "seen.u64").unlink()
        else:
            (run / "seen.u64").write_bytes(damage)
        capsys.readouterr()
        assert main(["sample", str(run), "--num", "2"]) != 0
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and re.search(message, err), err


def test_a_score_whose_loss_overflows_says_a_capped_perplexity_not_a_traceback(tmp_path, monkeypatch):
    """score_text took exp of the mean loss uncapped: a run whose logits are finite but huge (after
    --skip-non-finite) gave OverflowError in rnnkit score, and a 500 for every request batched with it."""
    from rnnkit.metrics import perplexity

    task = make_task(tmp_path)
    monkeypatch.setattr("rnnkit.decoding.token_log_probs", lambda model, ids, device: [-1000.0] * len(ids))
    result = task.score_text(None, "anna bob")
    assert result["perplexity"] == perplexity(1000.0) and math.isfinite(result["perplexity"])


def test_a_sample_over_lines_of_a_line_break_token_model_is_seen_when_each_line_it_completes_is(tmp_path):
    """A training line is kept without its line break, and a --line-breaks token sample runs over
    lines: the whole was compared, so every sample, a verbatim copy of the text too, was "novel"."""
    names = write(tmp_path / "all.txt", ["anna", "bob", "carla", "dave"] * 10)
    task = LanguageModelTask.prepare(LMDataConfig(train=[names], valid=names, test=names, line_breaks="token", batching="stream", batch_size=2))[0]
    newline = task.vocab.ids["\n"]
    line = lambda word: task.vocab.encode(list(word))  # noqa: E731
    assert task.is_seen(line("anna") + [newline] + line("bob") + [newline])
    assert task.is_seen(line("anna") + [newline] + line("bo"))  # cut by the length: judged by the line it completed
    assert not task.is_seen(line("anna") + [newline] + line("bobby") + [newline])
    assert not task.is_seen(line("annabob"))
    typed = line("anna") + [newline]  # a prime of a whole training line: the user's, not the model's
    assert not task.is_seen(typed + line("bobby") + [newline], typed=len(typed)) and not task.is_seen(typed + line("xy"), typed=len(typed))


def test_a_language_model_refuses_tokens_with_no_step():
    """(0, B) tokens gave the logits of one step, (1, B, V): x<1> = 0 is made whatever T is."""
    from rnnkit.models.language_model import LanguageModel

    model = LanguageModel(10, cell="lstm", embedding_size=4, hidden_size=4)
    assert model(torch.zeros(3, 2, dtype=torch.long)).logits.shape == (3, 2, 10)
    with pytest.raises(ValueError, match=r"tokens of shape \(T, B\) with T, B >= 1, got \(0, 2\)"):
        model(torch.zeros(0, 2, dtype=torch.long))
