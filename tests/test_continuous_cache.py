"""The continuous cache (rnnkit.decoding.cache; Grave et al. 2017): its definition computed by hand,
that a token's score never reads the token or those after it, tuning, and ``rnnkit eval --cache``."""

from __future__ import annotations

import json
import math

import pytest
import torch

from rnnkit.cli import main
from rnnkit.decoding import token_log_probs
from rnnkit.decoding.cache import INTERPOLATIONS, THETAS, ContinuousCache, cached_log_probs, grid_edges, tune
from rnnkit.errors import UsageError
from rnnkit.runs import open_run


def text(T=120, F=6, V=9, seed=0):
    """Features h<t>, targets y<t> and model log-probabilities of a random text (float64)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(T, F, generator=g, dtype=torch.float64)
    y = torch.randint(0, V, (T,), generator=g)
    log_p = torch.log_softmax(torch.randn(T, V, generator=g, dtype=torch.float64), -1).gather(1, y[:, None])[:, 0]
    return h, y, log_p


def chunked(h, y, log_p, sizes):
    out, start = [], 0
    for size in sizes:
        out.append((h[start : start + size], y[start : start + size], log_p[start : start + size]))
        start += size
    return out


def by_hand(h, y, log_p, window, theta, lam) -> torch.Tensor:
    """Grave et al.'s eq. 2 and the interpolation, one step at a time over the remembered steps."""
    out = []
    for t in range(len(y)):
        remembered = range(max(0, t - window), t)
        if not remembered:
            out.append(float(log_p[t]))
            continue
        weights = torch.softmax(torch.tensor([theta * float(h[t] @ h[i]) for i in remembered], dtype=torch.float64), 0)
        p_cache = sum(float(w) for w, i in zip(weights, remembered) if y[i] == y[t])
        out.append(math.log((1 - lam) * math.exp(float(log_p[t])) + lam * p_cache))
    return torch.tensor(out, dtype=torch.float64)


@pytest.mark.parametrize("sizes", [[120], [40, 40, 40], [7, 113], [1] * 120, [50, 3, 67]])
def test_the_cache_is_its_definition_however_the_text_is_cut_into_chunks(sizes):
    h, y, log_p = text()
    expected = by_hand(h, y, log_p, window=25, theta=0.4, lam=0.2)
    got = cached_log_probs(chunked(h, y, log_p, sizes), ContinuousCache(25, 0.4, 0.2))
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)  # the scores are float32: h·h sums 6 products


def test_a_tokens_score_never_reads_that_token_or_the_ones_after_it_through_the_memory():
    h, y, log_p = text()
    changed_h, changed_y = h.clone(), y.clone()
    changed_h[61:] = torch.randn(59, 6, dtype=torch.float64)
    changed_y[61:] = (y[61:] + 1) % 9
    cache = ContinuousCache(30, 0.5, 0.3)
    before = cached_log_probs(chunked(h, y, log_p, [64, 56]), cache)
    after = cached_log_probs(chunked(changed_h, changed_y, log_p, [64, 56]), cache)
    torch.testing.assert_close(after[:61], before[:61], rtol=0, atol=0)
    assert not torch.equal(after[61:], before[61:])


def test_an_interpolation_of_zero_is_the_model_alone_and_a_memory_of_one_step_copies_the_last_token():
    h, y, log_p = text()
    torch.testing.assert_close(cached_log_probs([(h, y, log_p)], ContinuousCache(50, 1.0, 0.0)), log_p, rtol=0, atol=1e-12)
    got = cached_log_probs([(h, y, log_p)], ContinuousCache(1, 1.0, 0.5))  # p_cache = 1{y<t-1> = y<t>}
    repeated = torch.cat([torch.tensor([False]), y[1:] == y[:-1]])
    expected = torch.log(0.5 * log_p.exp() + 0.5 * repeated.double())
    expected[0] = log_p[0]  # nothing remembered at the first step
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_tuning_picks_the_grid_point_with_the_lowest_loss_and_the_cache_helps_a_text_that_repeats():
    h, y, log_p = text(T=60)
    repeating = (torch.cat([h, h, h]), torch.cat([y, y, y]), torch.cat([log_p, log_p, log_p]))  # the text three times
    cache, grid = tune(chunked(*repeating, [50, 50, 80]), windows=[10, 100])
    assert len(grid) == 2 * len(THETAS) * len(INTERPOLATIONS)
    best = min(grid, key=lambda row: row["loss"])
    assert (cache.window, cache.theta, cache.interpolation) == (best["window"], best["theta"], best["lambda"])
    assert best["loss"] == pytest.approx(-float(cached_log_probs([repeating], cache).mean()), abs=1e-9)
    assert cache.window == 100 and best["loss"] < -float(repeating[2].mean())  # it remembers the repetition, 60 steps back


def test_a_tuned_value_at_the_end_of_its_grid_is_pointed_out_with_the_option_that_goes_beyond_it():
    inside = ContinuousCache(500, THETAS[3], INTERPOLATIONS[2])
    assert grid_edges(inside, [100, 500, 1000]) == []
    notes = grid_edges(ContinuousCache(1000, max(THETAS), max(INTERPOLATIONS)), [100, 500, 1000])
    assert [note.split(" = ")[0] for note in notes] == ["N", "θ", "λ"]
    assert all(option in note for note, option in zip(notes, ("--cache)", "--cache-theta", "--cache-lambda")))
    (low,) = grid_edges(ContinuousCache(1000, min(THETAS), INTERPOLATIONS[2]), [1000])  # N given, not tuned: no note on it
    assert low.startswith(f"θ = {min(THETAS):g} ")
    (alone,) = grid_edges(ContinuousCache(500, THETAS[3], 0.0), [100, 500, 1000])  # λ = 0 is not an end to go past
    assert "did not help" in alone
    (alone,) = grid_edges(ContinuousCache(100, min(THETAS), 0.0), [100, 500, 1000])  # nor are N and θ then: they shape nothing
    assert "did not help" in alone


@pytest.mark.parametrize("values,option", [((0, 0.3, 0.1), "--cache"), ((10, -1.0, 0.1), "--cache-theta"), ((10, 0.3, 1.5), "--cache-lambda"), ((10, 0.3, 1.0), "--cache-lambda")])
def test_a_value_out_of_range_names_its_option(values, option):
    with pytest.raises(UsageError, match=f"^{option} "):
        ContinuousCache(*values)


# -- rnnkit eval --cache ---------------------------------------------------------------------------------------
WORDS = "the cat sat on the mat and the dog sat on the log while a bird sang".split()


def rnnkit(*args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def stream_run(tmp_path_factory):
    """A tiny word-level model trained on one stream of text (300 lines, more than one chunk)."""
    folder = tmp_path_factory.mktemp("cache")
    g = torch.Generator().manual_seed(1)
    lines = [" ".join(WORDS[i] for i in torch.randint(0, len(WORDS), (6,), generator=g).tolist()) for _ in range(300)]
    (folder / "train.txt").write_text("\n".join(lines) + "\n")
    (folder / "valid.txt").write_text("\n".join(lines[:80]) + "\n")
    code = main(["train", "lm", str(folder / "train.txt"), "--run", str(folder / "run"), "--level", "whitespace", "--batching", "stream",
                 "--line-breaks", "token", "--bptt", "16", "--embedding-size", "8", "--hidden-size", "16", "--epochs", "1", "--no-progress"])  # fmt: skip
    assert code == 0
    return folder


def test_the_model_alone_scores_the_text_as_one_pass_over_it_would(stream_run):
    """The cache reads the text as one column, chunk after chunk with the state carried: its model
    figures equal one teacher-forced pass over the whole text (the first input zero)."""
    task, model, _, device = open_run(stream_run / "run")
    result = task.evaluate_file(model, str(stream_run / "valid.txt"), device, cache=ContinuousCache(50, 0.3, 0.0))
    ids = task.vocab.encode([t for line in (stream_run / "valid.txt").read_text().splitlines() for t in line.split() + ["\n"]])
    assert result["count"] == len(ids) > 256  # more than one chunk of the evaluation's 256 steps
    one_pass = -sum(token_log_probs(model, ids, device)) / len(ids)
    assert result["model_loss"] == pytest.approx(one_pass, abs=1e-5)
    assert result["loss"] == pytest.approx(result["model_loss"], abs=1e-9)  # λ = 0


def test_eval_with_a_cache_tuned_on_a_file_reports_the_figures_of_the_point_it_chose(stream_run, capsys):
    valid = stream_run / "valid.txt"
    code, out, err = rnnkit("eval", stream_run / "run", valid, "--cache-tune", valid, "--cache", "200", "--json", capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    tuning = result["cache_tuning"]
    assert result["cache"]["window"] == 200 and {row["window"] for row in tuning["grid"]} == {200}
    assert result["loss"] == pytest.approx(tuning["loss"], abs=1e-6)  # the same text: the chosen point's loss
    model_alone = next(row["loss"] for row in tuning["grid"] if row["lambda"] == 0)  # λ = 0 is in the grid: tuning never does worse
    assert tuning["loss"] == min(row["loss"] for row in tuning["grid"]) <= model_alone and tuning["model_perplexity"] == pytest.approx(result["model_perplexity"])
    code, out, _ = rnnkit("eval", stream_run / "run", valid, "--cache", "200", "--cache-theta", "0.5", capsys=capsys)
    assert code == 0 and "with a continuous cache of 200 steps (theta 0.5, lambda 0.1); the model alone" in out


def test_cache_options_are_refused_in_one_line_where_there_is_no_stream(tmp_path, stream_run, capsys):
    lines = tmp_path / "names.txt"
    lines.write_text("\n".join(["anna", "bob", "carla", "dave"] * 10) + "\n")
    assert main(["train", "lm", str(lines), "--run", str(tmp_path / "run"), "--level", "char", "--embedding-size", "4", "--hidden-size", "8", "--epochs", "1", "--no-progress"]) == 0
    capsys.readouterr()
    code, out, err = rnnkit("eval", tmp_path / "run", lines, "--cache", "100", capsys=capsys)
    assert code == 2 and err.strip().count("\n") == 0 and "--batching stream" in err and not out
    code, _, err = rnnkit("eval", stream_run / "run", lines, "--cache-tune", lines, "--cache-lambda", "0.2", capsys=capsys)
    assert code == 2 and "--cache-tune chooses" in err
