"""Language models: vocabulary and tokenizers, the model's equations, loss, scoring, sampling,
batching, training and exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from rnnkit.data.batches import SentenceBatches, StreamBatches
from rnnkit.data.text import DataError, read_lines, split_lines
from rnnkit.data.tokenizers import make_tokenizer
from rnnkit.data.vocab import Vocabulary
from rnnkit.decoding import SamplingOptions, next_token, sample, token_log_probs, token_log_probs_stepwise
from rnnkit.models import build_model
from rnnkit.models.language_model import LanguageModel
from rnnkit.models.losses import token_loss
from rnnkit.tasks.language_model import LanguageModelTask, LMDataConfig
from rnnkit.training import RunDir, Trainer, TrainingConfig

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


# -- vocabulary and tokenizers ------------------------------------------------------------------------
def test_vocabulary_rules_and_round_trip():
    sentences = [["the", "cat", "sat"], ["the", "dog", "<unk>"], ["a", "cat"]]
    vocab = Vocabulary.build(sentences, max_size=6)
    assert vocab.tokens[:3] == ["<PAD>", "<UNK>", "<EOS>"]
    assert vocab.tokens[3:] == ["cat", "the", "a"]  # by count, ties alphabetical; max_size counts specials
    assert "<unk>" not in vocab  # the data's own unknown marker is <UNK>
    ids = vocab.encode(["the", "dog", "<unk>", "cat"], eos=True)
    assert ids == [vocab.ids["the"], vocab.unk_id, vocab.unk_id, vocab.ids["cat"], vocab.eos_id]
    assert vocab.decode(ids) == ["the", "<UNK>", "<UNK>", "cat"]
    assert vocab.decode([vocab.ids["a"], vocab.pad_id, vocab.eos_id, vocab.ids["cat"]]) == ["a"]  # PAD skipped, stop at EOS
    assert Vocabulary.from_json(vocab.to_json()).tokens == vocab.tokens
    assert Vocabulary.build(sentences, min_count=2).tokens[3:] == ["cat", "the"]


def test_word_tokenizer_rule_and_round_trip():
    word = make_tokenizer({"kind": "word"})
    tokens = word.tokenize('Cats average 15 hours of sleep a day. "Don\'t" (really) well-known <unk>!')
    assert tokens == ["Cats", "average", "15", "hours", "of", "sleep", "a", "day", ".", '"', "Don't", '"', "(", "really", ")", "well-known", "<unk>", "!"]
    assert word.detokenize(word.tokenize("Hello, world (again)!")) == "Hello, world (again)!"
    char = make_tokenizer({"kind": "char", "lowercase": True})
    assert char.tokenize("Ab c") == ["a", "b", " ", "c"] and char.detokenize(["a", "b"]) == "ab"
    assert make_tokenizer({"kind": "whitespace"}).tokenize(" mr. <unk> is  N ") == ["mr.", "<unk>", "is", "N"]
    with pytest.raises(ValueError, match="unknown tokenizer level 'syllable'"):
        make_tokenizer({"kind": "syllable"})


def test_bpe_tokenizer_learns_and_saves():
    pytest.importorskip("tokenizers")
    bpe = make_tokenizer({"kind": "bpe", "vocab_size": 60})
    bpe.fit(["the cat sat on the mat", "the dog sat on the log"] * 20)
    tokens = bpe.tokenize("the cat sat")
    assert bpe.detokenize(tokens) == "the cat sat"
    again = make_tokenizer(bpe.config())
    assert again.tokenize("the cat sat") == tokens


def test_read_lines_errors_name_the_file(tmp_path):
    (tmp_path / "bad.txt").write_bytes(b"fine\nbad \xff here\n")
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(DataError, match=r"bad.txt:2: not UTF-8 text"):
        read_lines(tmp_path / "bad.txt")
    with pytest.raises(DataError, match=r"empty.txt: the file has no text"):
        read_lines(tmp_path / "empty.txt")
    with pytest.raises(DataError, match=r"missing.txt: no such file"):
        read_lines(tmp_path / "missing.txt")


def test_split_is_deterministic_and_complete():
    lines = [f"line {i}" for i in range(100)]
    a = split_lines(lines, 0.1, 0.2, seed=3)
    assert a == split_lines(lines, 0.1, 0.2, seed=3)
    assert [len(part) for part in a] == [70, 10, 20]
    assert sorted(sum(a, [])) == sorted(lines)
    assert a != split_lines(lines, 0.1, 0.2, seed=4)


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
    a, _ = model(tokens)
    b, _ = model(changed)
    torch.testing.assert_close(a[:3], b[:3])  # ŷ<3> depends on y<1..2> only
    assert not torch.allclose(a[3], b[3])


def test_bidirectional_language_model_is_refused():
    with pytest.raises(ValueError, match="cannot be bidirectional"):
        LanguageModel(10, bidirectional=True)


def test_summed_loss_equals_per_step_losses_added_by_hand():
    model = tiny_model()
    tokens = torch.tensor([[3, 4], [5, 2], [2, 0]])  # second sequence padded after <EOS>
    logits, _ = model(tokens, lengths=torch.tensor([3, 2]))
    total, count = token_loss(logits, tokens)
    by_hand = 0.0
    for t, b in [(0, 0), (1, 0), (2, 0), (0, 1), (1, 1)]:
        by_hand += -F.log_softmax(logits[t, b], dim=-1)[tokens[t, b]]
    assert count == 5
    torch.testing.assert_close(total, by_hand.to(total.dtype))


def test_tied_embeddings_share_one_matrix():
    model = LanguageModel(11, embedding_size=6, hidden_size=6, tie_embeddings=True)
    assert model.output.weight is model.embedding.weight
    with pytest.raises(ValueError, match="tie_embeddings needs"):
        LanguageModel(11, embedding_size=6, hidden_size=8, tie_embeddings=True)
    assert LanguageModel(11, embedding_size=6, hidden_size=8, head_sizes=[6], tie_embeddings=True).head.output_size == 6


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_sentence_log_prob_equals_stepwise_decoding(cell):
    model = tiny_model(cell=cell, num_layers=2)
    ids = [3, 5, 4, 6, 2]
    one_pass = token_log_probs(model, ids)
    stepwise = token_log_probs_stepwise(model, ids)
    assert len(one_pass) == 5
    assert max(abs(a - b) for a, b in zip(one_pass, stepwise)) < 1e-10
    # and P(sentence) is a product of conditionals: summing over every 2-token sequence gives
    # the total probability of all sequences that continue after 2 tokens
    assert all(lp <= 0 for lp in one_pass)


def test_sampling_is_reproducible_and_top_k_1_is_greedy():
    model = tiny_model(cell="lstm")
    options = SamplingOptions(temperature=1.0, max_length=12)
    a = sample(model, 5, options, eos_id=2, banned=[0], seed=7)
    b = sample(model, 5, options, eos_id=2, banned=[0], seed=7)
    assert a == b
    assert a != sample(model, 5, options, eos_id=2, banned=[0], seed=8)
    greedy = sample(model, 3, SamplingOptions(greedy=True, max_length=12), eos_id=2, banned=[0])
    top1 = sample(model, 3, SamplingOptions(top_k=1, max_length=12), eos_id=2, banned=[0], seed=1)
    assert greedy == top1
    assert all(0 not in s and 2 not in s for s in a)  # never PAD; EOS ends a sample and is not in it


def test_top_p_keeps_the_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    drawn = {int(next_token(logits, SamplingOptions(top_p=0.75), torch.Generator().manual_seed(s))) for s in range(200)}
    assert drawn == {0, 1}  # 0.5 + 0.3 reach 0.75; tokens 2 and 3 never drawn
    with pytest.raises(ValueError, match="temperature must be positive"):
        SamplingOptions(temperature=0).check()


# -- batching -------------------------------------------------------------------------------------------
def test_sentence_batches_are_deterministic_per_epoch_and_cover_everything():
    sequences = [[3] * n + [2] for n in range(1, 40)]
    batches = SentenceBatches(sequences, batch_size=8, seed=1)
    first = [b.tokens.clone() for b in batches.iterate(0)]
    again = [b.tokens for b in batches.iterate(0)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert batches.order(0) != batches.order(1)
    assert sorted(i for batch in batches.order(0) for i in batch) == list(range(39))
    resumed = list(batches.iterate(0, start=2))
    assert torch.equal(resumed[0].tokens, first[2])
    batch = next(batches.iterate(0))
    for b, n in enumerate(batch.lengths.tolist()):
        assert batch.tokens[n - 1, b] == 2 and torch.all(batch.tokens[n:, b] == 0)  # <EOS> then <PAD>


def test_stream_batches_layout():
    stream = StreamBatches(list(range(3, 27)), batch_size=4, bptt=3)  # 24 tokens: 4 columns of 6
    chunks = list(stream.iterate(0))
    assert len(chunks) == 2
    assert chunks[0].tokens[:, 0].tolist() == [3, 4, 5] and chunks[0].previous is None
    assert chunks[1].tokens[:, 0].tolist() == [6, 7, 8] and chunks[1].previous.tolist() == [5, 11, 17, 23]


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


@pytest.mark.skipif(not (SHARED / "names" / "names.txt").exists(), reason="shared names data absent")
def test_reads_the_real_names_file():
    assert len(read_lines(SHARED / "names" / "names.txt")) == 32033


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


def test_on_device_sampling_draws_like_the_host_version():
    from rnnkit.decoding import next_token_on_device

    torch.manual_seed(0)
    logits = torch.randn(6, 30)
    for options in (SamplingOptions(greedy=True), SamplingOptions(top_k=1)):
        assert torch.equal(next_token_on_device(logits, options, banned=[0]), next_token(logits, options, None, banned=[0]))
    drawn = {int(t) for _ in range(100) for t in next_token_on_device(logits[:1].repeat(8, 1), SamplingOptions(top_k=3), banned=[0])}
    assert drawn <= set(torch.topk(logits[0, 1:], 3).indices.add(1).tolist())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_graphed_sampler_equals_eager_sampling_when_greedy(cell):
    from rnnkit.decoding import GraphedSampler

    torch.manual_seed(0)
    model = LanguageModel(50, cell=cell, embedding_size=16, hidden_size=16).cuda().eval()
    eager = sample(model, 3, SamplingOptions(greedy=True, max_length=40), eos_id=2, device="cuda", fast=False)
    graphed = GraphedSampler(model, 3, SamplingOptions(greedy=True, max_length=40)).sample(eos_id=2)
    assert graphed == eager
