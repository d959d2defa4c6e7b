"""Sampling options and what a sampler may draw: <UNK> never, unless asked; options checked."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from rnnkit.decoding import SamplingOptions, next_token, next_token_on_device, sample
from rnnkit.errors import UsageError

UNK, EOS = 1, 2


class FavoursUnk(nn.Module):
    """A stand-in language model whose next token is almost always <UNK> (id 1)."""

    def step(self, previous, state, batch_size):
        logits = torch.zeros(batch_size, 6)  # (B, V)
        logits[:, UNK] = 8.0  # P(<UNK>) ~ 0.99
        logits[:, 3] = 1.0  # the most likely token after it (what greedy decoding takes without <UNK>)
        logits[:, 0] = -torch.inf  # <PAD>
        return logits, state


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


def test_top_k_zero_means_no_limit():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    draws = next_token(logits.expand(2000, -1), SamplingOptions(top_k=0), generator)
    assert set(draws.tolist()) == {0, 1, 2, 3}
