"""Sampling options and what a sampler may draw: <UNK> never, unless asked; options checked."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnkit.decoding import SamplingOptions, next_token, next_token_on_device, sample, token_log_probs, token_log_probs_stepwise
from rnnkit.errors import UsageError
from rnnkit.models.base import ModelOutput
from rnnkit.models.language_model import LanguageModel

UNK, EOS = 1, 2


class FavoursUnk(nn.Module):
    """A stand-in language model whose next token is almost always <UNK> (id 1)."""

    def start(self, batch_size):
        return torch.zeros(1, batch_size, 1)  # (L, B, n_a)

    def step(self, previous, state):
        logits = torch.zeros(state.shape[1], 6)  # (B, V)
        logits[:, UNK] = 8.0  # P(<UNK>) ~ 0.99
        logits[:, 3] = 1.0  # the most likely token after it (what greedy decoding takes without <UNK>)
        logits[:, 0] = -torch.inf  # <PAD>
        return ModelOutput(logits, state)


@pytest.mark.parametrize("options", [SamplingOptions(max_length=30), SamplingOptions(max_length=30, temperature=3.0, top_k=2),
                                     SamplingOptions(max_length=30, top_p=0.999), SamplingOptions(max_length=30, greedy=True)])  # fmt: skip
def test_samples_never_hold_unk_unless_asked(options):
    rows = sample(FavoursUnk(), 8, options, eos_id=EOS, banned=[0], unk_id=UNK, seed=0)
    assert all(UNK not in row for row in rows) and any(rows)
    allowed = SamplingOptions(**{**options.__dict__, "allow_unk": True})
    rows = sample(FavoursUnk(), 8, allowed, eos_id=EOS, banned=[0], unk_id=UNK, seed=0)
    assert any(UNK in row for row in rows)


def test_masking_unk_is_drawing_again_after_a_rejected_unk():
    """The course's advice, reject <UNK> and draw again, gives the distribution of the other tokens
    renormalised: what a masked logit gives in one draw."""
    logits = torch.tensor([[-torch.inf, 2.0, 0.5, 1.0, -1.0]])
    probs = logits.softmax(-1)[0]
    wanted = probs.clone()
    wanted[UNK] = 0
    wanted /= wanted.sum()
    generator = torch.Generator().manual_seed(0)
    draws = torch.cat([next_token(logits.expand(4000, -1), SamplingOptions(), generator, banned=[UNK]) for _ in range(5)])
    frequencies = torch.bincount(draws, minlength=5).double() / len(draws)
    assert frequencies[UNK] == 0 and torch.allclose(frequencies, wanted.double(), atol=0.02)
    torch.manual_seed(0)
    on_device = next_token_on_device(logits.expand(4000, -1), SamplingOptions(), torch.tensor([UNK]))
    assert UNK not in on_device.tolist()


@pytest.mark.parametrize("field,value", [("temperature", math.nan), ("temperature", 0.0), ("temperature", math.inf),
                                         ("top_p", 0.0), ("top_p", math.nan), ("top_p", 1.5), ("top_k", -1), ("max_length", 0)])  # fmt: skip
def test_bad_options_are_usage_errors_naming_the_option(field, value):
    with pytest.raises(UsageError, match=field):
        SamplingOptions(**{field: value}).check()


@pytest.mark.parametrize("temperature", [1e-8, 1e-40, 1e-300, 5e-324])
def test_a_tiny_temperature_draws_the_likeliest_token_not_nan(temperature):
    """Every positive temperature is valid; below float32's range 1 / T would be inf and 0 / 0 NaN.
    As T goes to 0 softmax(z / T) puts all its mass on the argmax, and so does the draw."""
    logits = torch.tensor([[1.0, 3.0, 0.0, 2.9], [-5.0, -5.5, -4.0, -7.0]])
    options = SamplingOptions(temperature=temperature).check()
    for seed in range(5):
        assert next_token(logits, options, torch.Generator().manual_seed(seed)).tolist() == [1, 2]


@pytest.mark.parametrize("temperature", [1e30, 1e39, 1e300])
def test_a_huge_temperature_draws_uniformly_not_a_traceback(temperature):
    """1e39 is infinite in float32: z / T was NaN and torch.multinomial's traceback. As T grows,
    softmax(z / T) goes to uniform, and so do the draws."""
    logits = torch.tensor([[1.0, 30.0, 0.0, 2.9]]).expand(4000, -1)
    draws = next_token(logits, SamplingOptions(temperature=temperature).check(), torch.Generator().manual_seed(0))
    assert torch.bincount(draws, minlength=4).min() > 900


def test_top_k_zero_means_no_limit():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    draws = next_token(logits.expand(2000, -1), SamplingOptions(top_k=0), generator)
    assert set(draws.tolist()) == {0, 1, 2, 3}


# -- on a real language model: scoring equals stepping, sampling reproducible, nucleus, on-device draws --
def tiny_model(vocab_size=7, cell="gru", **kwargs):
    torch.manual_seed(0)
    return LanguageModel(vocab_size, cell=cell, embedding_size=5, hidden_size=8, **kwargs).double()


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
    for tiny in (1e-46, 1e-300):  # valid, and 0 in float32: the likeliest token alone, not an error
        assert SamplingOptions(top_p=tiny).check() and int(next_token(logits, SamplingOptions(top_p=tiny), None)) == 0
    with pytest.raises(ValueError, match="temperature must be positive"):
        SamplingOptions(temperature=0).check()


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
