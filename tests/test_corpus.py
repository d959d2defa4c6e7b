"""Prepared corpora (rnnkit.data.corpus): the ids on disk equal the line-by-line encoding, the cache
notices a changed file, the split and the batch order are exact and deterministic, the batches read
from the store equal the in-memory layout, and two processes read disjoint shares of each batch."""

from __future__ import annotations

import json
import os
import socket
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from rnnkit.data import corpus as corpus_module
from rnnkit.data.batches import StreamBatches
from rnnkit.data.corpus import CorpusSentenceBatches, SeenLines, TokenFile, permute, prepare_corpus, sequence_hash
from rnnkit.data.text import DataError, fingerprint, read_lines
from rnnkit.tasks.language_model import LanguageModelTask, LMDataConfig
from rnnkit.distributed import Shard

# line breaks of every kind, blank and white-space-only lines, a BOM, non-ASCII letters and spaces,
# the Penn Treebank's <unk>, a literal <EOS>, punctuation and hyphens for the word rule
TEXT = (
    "\ufeffThe cat sat on the mat.\r\n"
    "the dog's well-known bone, (3.5 kg)\r"
    "\n"
    "   \t\n"
    "Ünïcödé wörds — «quoted» <unk> here\n"
    "\u3000\u00a0\n"
    "a <EOS> in the text\r\n"
    "\r\n"
    "THE END"
)


def write(path: Path, text: str) -> str:
    path.write_bytes(text.encode("utf-8"))
    return str(path)


@pytest.fixture
def tiny_pieces(monkeypatch):
    """Pieces of 7 bytes and blocks of 5 tokens: every boundary case of the streaming passes
    (a CRLF cut between two reads, lines longer than a piece, line hashes carried across blocks),
    and the word level's worker processes."""
    monkeypatch.setattr(corpus_module, "PIECE_BYTES", 7)
    monkeypatch.setattr(corpus_module, "BLOCK_TOKENS", 5)
    monkeypatch.setattr(corpus_module, "POOL_FROM_BYTES", 0)


@pytest.mark.parametrize("line_breaks", ["eos", "token"])
@pytest.mark.parametrize("level", ["char", "word", "whitespace", "bpe"])
def test_prepared_ids_equal_the_line_by_line_encoding(tmp_path, tiny_pieces, level, line_breaks):
    pytest.importorskip("tokenizers") if level == "bpe" else None
    train = write(tmp_path / "train.txt", TEXT * 3)
    valid = write(tmp_path / "valid.txt", "the cat\nan unseen ŵord\n")
    data = LMDataConfig(train=[train], valid=valid, level=level, line_breaks=line_breaks, batching="stream", bpe_vocab=60, lowercase=level == "word")
    task, record = LanguageModelTask.prepare(data)
    keep_blank = line_breaks == "token"
    for split, path in (("train", train), ("valid", valid)):
        lines = read_lines(path, keep_blank=keep_blank)
        prepared = task.splits[split]
        assert prepared.ids[:].tolist() == task.encode_stream(lines)
        assert [prepared.sentence(i).tolist() for i in range(len(prepared))] == [task.encode_stream([line]) for line in lines]
    # the vocabulary: counted on the training lines (a line break counted as often as it occurs)
    reference = [task.tokenizer.tokenize(line) + (["\n"] if keep_blank else []) for line in read_lines(train, keep_blank=keep_blank)]
    assert task.vocab.tokens == type(task.vocab).build(reference).tokens
    assert record["train_fingerprint"] == fingerprint(read_lines(train, keep_blank=keep_blank))


def test_the_novelty_check_finds_exactly_the_training_lines(tmp_path, tiny_pieces):
    train = write(tmp_path / "train.txt", "anna\nbob\ncarla\nanna\n")
    task, _ = LanguageModelTask.prepare(LMDataConfig(train=[train], valid=write(tmp_path / "v.txt", "dave\n")))
    assert len(task.seen) == 3  # distinct lines
    for name in ["anna", "bob", "carla"]:
        ids = task.vocab.encode(list(name))
        assert task.is_seen(ids) and task.is_seen(ids + [task.vocab.eos_id, 5])  # a sample stops at <EOS>
    for name in ["ann", "annaa", "bbo", ""]:
        assert not task.is_seen(task.vocab.encode(list(name)))
    hashes = np.sort(np.array([sequence_hash([3, 4]), sequence_hash([4, 3]), sequence_hash([3])], dtype=np.uint64))
    assert len(np.unique(hashes)) == 3 and [4, 3] in SeenLines(hashes) and [3, 3] not in SeenLines(hashes)


def test_a_run_keeps_its_novelty_check(tmp_path):
    from rnnkit.training import RunDir

    train = write(tmp_path / "train.txt", "anna\nbob\n")
    task, _ = LanguageModelTask.prepare(LMDataConfig(train=[train], valid=train))
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    task.save(run)
    again = LanguageModelTask.load(run, task.data)
    assert again.is_seen(task.vocab.encode(list("bob"))) and not again.is_seen(task.vocab.encode(list("bo")))


@pytest.mark.parametrize("n", [1, 2, 3, 10, 97, 1000, 4097])
def test_permute_is_a_bijection_fixed_by_its_key(n):
    order = permute(np.arange(n), n, key=7)
    assert sorted(order.tolist()) == list(range(n))
    assert np.array_equal(order, permute(np.arange(n), n, key=7))
    assert np.array_equal(order[n // 3 :], permute(np.arange(n // 3, n), n, key=7))  # any slice alone
    if n >= 10:
        assert not np.array_equal(order, permute(np.arange(n), n, key=8))


def test_the_made_split_is_exact_deterministic_and_complete(tmp_path):
    lines = [f"line {i}" for i in range(203)]
    path = write(tmp_path / "all.txt", "\n".join(lines) + "\n\n  \n")  # blank lines are not lines
    data = lambda seed: LMDataConfig(train=[path], split=(0.1, 0.05), split_seed=seed)  # noqa: E731
    task, record = LanguageModelTask.prepare(data(0))
    assert record["lines"] == {"train": 203 - 20 - 10, "valid": 20, "test": 10}  # round(203·0.1), round(203·0.05)

    def text_of(split):
        return [task.decode(split.sentence(i).tolist()) for i in range(len(split))]

    parts = {name: text_of(task.splits[name]) for name in ("train", "valid", "test")}
    assert sorted(sum(parts.values(), [])) == sorted(lines)  # each line in exactly one split
    assert parts["train"] == [line for line in lines if line in set(parts["train"])]  # file order kept
    again, _ = LanguageModelTask.prepare(data(0))
    assert text_of(again.splits["valid"]) == parts["valid"]
    other, _ = LanguageModelTask.prepare(data(1))
    assert text_of(other.splits["valid"]) != parts["valid"]
    with pytest.raises(DataError, match=r"2 lines of .*two\.txt are too few to split"):  # the file named
        LanguageModelTask.prepare(LMDataConfig(train=[write(tmp_path / "two.txt", "a\nb\n")]))


def test_a_changed_source_file_is_prepared_again(tmp_path, monkeypatch):
    builds = []
    real_build = corpus_module._build
    monkeypatch.setattr(corpus_module, "_build", lambda *a, **k: builds.append(1) or real_build(*a, **k))
    path = tmp_path / "train.txt"
    write(path, "anna\nbob\ncarla\n")
    data = lambda: LMDataConfig(train=[str(path)], valid=str(path))  # noqa: E731
    cache = tmp_path / "cache"
    first = prepare_corpus(data(), cache=cache)
    assert first.directory.is_relative_to(cache) and len(builds) == 1
    assert prepare_corpus(data(), cache=cache).directory == first.directory and len(builds) == 1  # reused
    assert prepare_corpus(LMDataConfig(train=[str(path)], valid=str(path), lowercase=True), cache=cache).directory != first.directory
    stat = path.stat()
    write(path, "anna\nbob\ncarlo\n")  # same size; the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    changed = prepare_corpus(data(), cache=cache)
    assert len(builds) == 3 and changed.directory == first.directory
    assert "o" in changed.vocab and "e" not in changed.vocab
    assert not list(cache.glob("corpora/*.tmp-*"))  # nothing half-written left
    # rewritten with its size and modification time kept (cp -p, rsync -a, touch -r): the content sample tells
    stat = path.stat()
    write(path, "anna\nbob\ncarly\n")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_mtime_ns == stat.st_mtime_ns
    assert "y" in prepare_corpus(data(), cache=cache).vocab and len(builds) == 4


def test_the_content_sample_reads_blocks_over_the_whole_of_a_big_file(tmp_path, monkeypatch):
    """A file over the sampled size: a change at its start, middle or end is seen, at 64 reads."""
    monkeypatch.setattr(corpus_module, "SAMPLE_BYTES", 16)
    path = tmp_path / "big.txt"
    text = bytearray(b"abcdefgh\n" * 2_000)  # 20,000 bytes, over 64 blocks of 16
    path.write_bytes(text)
    before = corpus_module.content_sample(path, len(text))
    middle = corpus_module.SAMPLE_BLOCKS // 2 * (len(text) - 16) // (corpus_module.SAMPLE_BLOCKS - 1)
    for at in (0, middle, len(text) - 1):  # in the first block, one in the middle, the last
        changed = bytearray(text)
        changed[at] = ord("z")
        path.write_bytes(changed)
        assert corpus_module.content_sample(path, len(changed)) != before


def test_stream_batches_from_the_store_equal_the_in_memory_layout(tmp_path):
    ids = np.arange(3, 3 + 103, dtype=np.uint16)
    ids.tofile(tmp_path / "ids")
    stored, listed = StreamBatches(TokenFile(tmp_path / "ids", np.uint16), 4, 5), StreamBatches(ids.tolist(), 4, 5)
    assert len(stored) == len(listed) == 5  # 25 rows of 4 columns (3 tokens left over), chunks of 5
    for shard in [Shard(), Shard(0, 2), Shard(1, 2)]:
        for a, b in zip(stored.iterate(0, 1, shard), listed.iterate(0, 1, shard), strict=True):
            assert torch.equal(a.tokens, b.tokens) and torch.equal(a.previous, b.previous)
    first = next(listed.iterate(0))
    assert first.tokens[:, 0].tolist() == [3, 4, 5, 6, 7] and first.tokens[0].tolist() == [3, 28, 53, 78]


def _sentence_split(tmp_path, n=157):
    rng = np.random.default_rng(0)
    lines = ["x" * int(k) for k in rng.integers(1, 30, n)]
    task, _ = LanguageModelTask.prepare(LMDataConfig(train=[write(tmp_path / "t.txt", "\n".join(lines) + "\n")], valid=write(tmp_path / "v.txt", "x\n")))
    return task.splits["train"]


def test_sentence_batches_cover_each_epoch_in_pools_sorted_by_length(tmp_path):
    split = _sentence_split(tmp_path)
    batches = CorpusSentenceBatches(split, batch_size=4, seed=3)
    batches.POOL = 5  # pools of 20 sentences
    epoch0 = [batches.indices(0, k) for k in range(len(batches))]
    assert len(epoch0) == 40 and sorted(np.concatenate(epoch0).tolist()) == list(range(157))
    assert all(np.array_equal(a, batches.indices(0, k)) for k, a in enumerate(epoch0))
    assert not all(np.array_equal(a, batches.indices(1, k)) for k, a in enumerate(epoch0))
    assert not all(np.array_equal(a, CorpusSentenceBatches(split, 4, seed=4).indices(0, k)) for k, a in enumerate(epoch0))
    # a pool's batches hold its sentences sorted by length: little padding
    pool_of = {int(i): p for p in range(8) for i in permute(np.arange(20 * p, min(20 * p + 20, 157)), 157, corpus_module.derive_key(3, 0, 1))}
    lengths = split.offsets[1:] - split.offsets[:-1]
    for j, a in enumerate(epoch0):
        assert len({pool_of[int(i)] for i in a}) == 1
        for b in epoch0[j + 1 :]:  # two batches of one pool do not interleave in length
            if pool_of[int(a[0])] == pool_of[int(b[0])]:
                assert lengths[a].max() <= lengths[b].min() or lengths[b].max() <= lengths[a].min()
    resumed = [b.tokens for b in batches.iterate(0, start=37)]
    assert len(resumed) == 3 and all(torch.equal(t, b.tokens) for t, b in zip(resumed, list(batches.iterate(0))[37:]))
    padded = next(batches.iterate(0))
    assert padded.lengths.tolist() == [len(split.sentence(i)) for i in epoch0[0]]


def test_bad_text_is_one_line_naming_the_file(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine\nalso fine\nbro\xffken\n")
    with pytest.raises(DataError, match=r"bad.txt:3: not UTF-8"):
        LanguageModelTask.prepare(LMDataConfig(train=[str(bad)], valid=str(bad)))
    with pytest.raises(DataError, match="empty.txt: the file has no text"):
        LanguageModelTask.prepare(LMDataConfig(train=[write(tmp_path / "empty.txt", " \n\n")]))
    with pytest.raises(DataError, match="missing.txt: no such file"):
        LanguageModelTask.prepare(LMDataConfig(train=[str(tmp_path / "missing.txt")]))


def test_rnnkit_prepare_then_train_from_the_directory(tmp_path, capsys):
    from rnnkit.cli import main

    train = write(tmp_path / "words.txt", "".join(f"the cat number {i} sat .\n" for i in range(60)))
    out = tmp_path / "prepared"
    assert main(["prepare", train, "--level", "word", "--out", str(out), "--no-progress"]) == 0
    assert "train 54 lines" in capsys.readouterr().out
    task, record = LanguageModelTask.prepare(LMDataConfig(train=[str(out)], batching="stream", batch_size=2))
    assert task.data.level == "word" and record["lines"] == {"train": 54, "valid": 3, "test": 3}
    again, _ = LanguageModelTask.prepare(LMDataConfig(train=[train], level="word"))
    assert again.vocab.tokens == task.vocab.tokens and again.splits["train"].ids[:].tolist() == task.splits["train"].ids[:].tolist()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    assert main(["prepare", train, "--out", str(tmp_path / "taken")]) == 2
    assert "is not an up-to-date prepared corpus" in capsys.readouterr().err
    # a store of one stream, line breaks as tokens (char-rnn's way), into a folder with a space
    spaced = tmp_path / "my corpora" / "stream"
    assert main(["prepare", train, "--line-breaks", "token", "--out", str(spaced), "--no-progress"]) == 0
    assert f"rnnkit train lm '{spaced}'" in capsys.readouterr().out  # a command that pastes
    stream, _ = LanguageModelTask.prepare(LMDataConfig(train=[str(spaced)], batching="stream"))
    assert stream.data.line_breaks == "token"
    # trained with sentence batching: the store's setting named as the store's, not as an option never typed
    assert main(["train", "lm", str(spaced), "--run", str(tmp_path / "r"), "--no-progress"]) == 2
    assert f"{spaced} was prepared with --line-breaks token, which needs --batching stream" in capsys.readouterr().err


# -- two processes (gloo) ---------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _read_share(rank: int, world: int, port: int, directory: str, results: str) -> None:
    import json

    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        task, _ = LanguageModelTask.prepare(LMDataConfig(train=[directory], batch_size=6, bptt=4))
        shard = Shard(rank, world)
        sentences = [[s[: n].tolist() for s, n in zip(b.tokens.T, b.lengths)] for b in task._train.iterate(0, 0, shard)]
        task.data.batching = "stream"
        stream = StreamBatches(task.splits["train"].ids, 6, 4)
        columns = [b.tokens.T.tolist() for b in stream.iterate(0, 0, shard)]
        read = task.splits["train"].ids.tokens_read
        Path(results, f"{rank}.json").write_text(json.dumps([sentences, columns, read]))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not available")
def test_two_gloo_processes_read_disjoint_shares_that_cover_each_batch(tmp_path):
    import torch.multiprocessing as mp

    names = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon", "kara", "leo"] * 4
    directory = tmp_path / "prepared"
    prepare_corpus(LMDataConfig(train=[write(tmp_path / "n.txt", "\n".join(names) + "\n")], split=(0.1, 0.1)), out=directory)
    mp.spawn(_read_share, args=(2, _free_port(), str(directory), str(tmp_path)), nprocs=2, join=True)
    (s0, c0, read0), (s1, c1, read1) = (json.loads((tmp_path / f"{rank}.json").read_text()) for rank in (0, 1))
    whole, _ = LanguageModelTask.prepare(LMDataConfig(train=[str(directory)], batch_size=6, bptt=4))
    for b, batch in enumerate(whole._train.iterate(0)):
        everyone = [s[: n].tolist() for s, n in zip(batch.tokens.T, batch.lengths)]
        assert sorted(s0[b] + s1[b]) == sorted(everyone) and everyone[0::2] == s0[b] and everyone[1::2] == s1[b]
    for b, chunk in enumerate(StreamBatches(whole.splits["train"].ids, 6, 4).iterate(0)):
        assert chunk.tokens.T.tolist() == [c for pair in zip(c0[b], c1[b]) for c in pair]  # columns 0, 2, 4 | 1, 3, 5
    total = whole.splits["train"].num_tokens
    assert read0 < 0.75 * 2 * total and read1 < 0.75 * 2 * total  # each read its share (twice: sentences, stream)


@pytest.mark.parametrize("kind", ["word", "whitespace"])
def test_the_bytewise_ascii_tokenizer_follows_the_regular_expressions(kind):
    """The numpy path for ASCII pieces equals the tokenizers' own rules (as regular expressions) on
    random strings of the characters where the rules turn: joiners, angle brackets, \\x1c-\\x1f."""
    import random
    import re

    from rnnkit.data.corpus import _ascii_piece, _regex_piece
    from rnnkit.data.tokenizers import word_rule

    pattern = re.compile((word_rule().pattern if kind == "word" else r"\S+") + r"|\n")
    rng = random.Random(0)
    pieces = ["a", "b", "Z", "0", "9", "_", "'", "-", "<", ">", ".", ",", " ", "\t", "\n", "\x1c", "\x0b", "<ab>", "<unk>"]
    for _ in range(400):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 25))) + "\n"
        keys, distinct = _ascii_piece(text.encode(), kind, lowercase=True)
        expected_keys, expected = _regex_piece(text, pattern, lowercase=True)
        assert distinct == expected and np.array_equal(keys, expected_keys), repr(text)


@pytest.mark.parametrize("hashes", [[5, 6, 5, 9, 6], [7, 7, 7], [2**64 - 1, 0, 2**63, 0], list(range(1000, 0, -1)) * 3, [int(h) for h in corpus_module.mix64(np.arange(300))] * 3])
def test_distinct_tokens_are_numbered_in_order_of_first_occurrence_even_when_hash_prefixes_collide(hashes):
    """The word level numbers a piece's distinct tokens by their first occurrence through a sort of
    truncated hashes packed with positions; 5 and 6 share their high bits in a piece of 5 tokens,
    so the exact fallback must decide."""
    from rnnkit.data.corpus import _distinct_in_order

    hashes = np.array(hashes, dtype=np.uint64)
    keys, first = _distinct_in_order(hashes)
    seen: dict[int, int] = {}
    expected = [seen.setdefault(int(h), len(seen)) for h in hashes]
    assert keys.tolist() == expected
    assert first.tolist() == [expected.index(k) for k in range(len(seen))]


def test_a_few_lines_split_with_a_line_for_each_fraction_asked_for(tmp_path):
    """Nine names split 7/1/1 as the in-memory reader splits them (round(9 · 0.05) is 0)."""
    corpus = prepare_corpus(LMDataConfig(train=[write(tmp_path / "names.txt", "\n".join("abcdefghi") + "\n")]), cache=False)
    assert corpus.meta["lines"] == {"train": 7, "valid": 1, "test": 1}


def test_bytes_that_are_not_utf8_are_named_by_line_and_column_from_the_piece_they_are_in(tmp_path, tiny_pieces):
    """Pieces of 7 bytes: the line is counted over the pieces before it, the column within its
    line; the file is named as it was given. For made splits and for a --valid file alike."""
    good = write(tmp_path / "good.txt", "ok\nfine\n")
    bad = tmp_path / "bad.txt"
    bad.write_bytes("ligne un\nzwei\r\ndrei é\n".encode() + b"vier \xfe\n")
    os.chdir(tmp_path)
    for data in (LMDataConfig(train=["bad.txt"]), LMDataConfig(train=[good], valid="bad.txt")):
        with pytest.raises(DataError, match=r"^bad\.txt:4: not UTF-8 text \(byte 0xfe at column 6\)$"):
            prepare_corpus(data, cache=False)


def test_a_nul_character_is_named_by_line_and_column_from_the_piece_it_is_in(tmp_path, tiny_pieces):
    """A NUL (a UTF-16 or binary file) is refused as undecodable bytes are: line counted over the
    pieces before it, for made splits and for a --valid file alike."""
    good = write(tmp_path / "good.txt", "ok\nfine\n")
    (tmp_path / "nul.txt").write_bytes(b"ligne un\nzwei\r\ndrei\nvi\x00er\n")
    os.chdir(tmp_path)
    for data in (LMDataConfig(train=["nul.txt"]), LMDataConfig(train=[good], valid="nul.txt")):
        with pytest.raises(DataError, match=r"^nul\.txt:4: a NUL character at column 3"):
            prepare_corpus(data, cache=False)


def test_a_store_rebuilt_under_a_reader_leaves_the_reader_its_own_data(tmp_path, monkeypatch):
    """A run reading a cached store while its source changes and another process prepares it again
    keeps reading what it opened: a rebuild renames a new directory in, the old files stay open."""
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "text.txt"
    source.write_text("".join(f"line {i} of the first text\n" for i in range(200)))
    data = LMDataConfig(train=[str(source)], level="word")
    first = prepare_corpus(data, cache=True)  # opened, nothing read yet
    same = corpus_module.Corpus.open(first.directory)
    before = [same.splits["valid"].sentence(i).tolist() for i in range(len(same.splits["valid"]))]
    source.write_text("".join(f"another {i} entirely\n" for i in range(50)))
    second = prepare_corpus(data, cache=True)
    assert second.directory == first.directory and second.meta["lines"] != first.meta["lines"]
    assert [first.splits["valid"].sentence(i).tolist() for i in range(len(first.splits["valid"]))] == before


def test_a_killed_build_leaves_nothing_in_the_cache_after_the_next_one(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNKIT_CACHE", str(tmp_path / "cache"))
    data = LMDataConfig(train=[write(tmp_path / "text.txt", "some text\n" * 50)])
    target = corpus_module.cache_path(data)
    target.parent.mkdir(parents=True)
    (target.parent / f"{target.name}.tmp-99999").mkdir()  # what a kill -9 during preparation leaves
    (target.parent / f"{target.name}.tmp-99999" / "train.keys.tmp").write_bytes(b"\0" * 64)
    prepare_corpus(data, cache=True)
    assert sorted(p.name for p in target.parent.iterdir()) == sorted([target.name, f"{target.name}.lock"])


def test_settings_a_prepared_corpus_was_not_made_with_are_refused_not_ignored(tmp_path):
    from rnnkit.errors import UsageError

    out = tmp_path / "store"
    prepare_corpus(LMDataConfig(train=[write(tmp_path / "text.txt", "some text here\n" * 50)], level="word"), out=out)
    assert prepare_corpus(LMDataConfig(train=[str(out)], level="word")).meta["settings"]["level"] == "word"  # the same: fine
    prepare_corpus(LMDataConfig(train=[str(out)]))  # defaults: the store's settings apply
    for wrong, option in ((dict(level="bpe"), "--level bpe"), (dict(max_vocab=5), "--max-vocab 5"), (dict(valid=str(tmp_path / "text.txt")), "--valid")):
        with pytest.raises(UsageError, match=f"^{option}"):
            prepare_corpus(LMDataConfig(train=[str(out)], **wrong))


@pytest.mark.parametrize(("prepared", "given", "refused"), [
    (["--level", "word"], ["--level", "char"], "--level char: "),  # char is the default level
    (["--lowercase"], ["--no-lowercase"], "--no-lowercase: "),
    (["--level", "bpe", "--bpe-vocab", "60"], ["--bpe-vocab", "4000"], "--bpe-vocab 4000: "),  # 4000: the default
    (["--line-breaks", "token"], ["--line-breaks", "eos"], "--line-breaks eos: "),
    (["--level", "word"], ["--config", "CONFIG"], "--level char: "),  # level = "char" in a config file, which is named first
])
def test_a_setting_given_at_its_default_that_the_store_contradicts_is_refused_too(tmp_path, capsys, prepared, given, refused):
    """The store's settings were compared with the defaults, not with what the user gave: --level
    char on a word store (char being the default) trained at the word level, without a word."""
    from rnnkit.cli import main

    train = write(tmp_path / "words.txt", "".join(f"The cat number {i} sat .\n" for i in range(60)))
    out = tmp_path / "store"
    assert main(["prepare", train, *prepared, "--out", str(out), "--no-progress"]) == 0
    config = tmp_path / "c.toml"
    config.write_text('level = "char"\n')
    given = [str(config) if g == "CONFIG" else g for g in given]
    run = tmp_path / "run"
    capsys.readouterr()
    assert main(["train", "lm", str(out), *given, "--hidden-size", "4", "--max-steps", "1", "--no-progress", "--run", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and (f"error: {refused}" in err[0] or f"c.toml: {refused}" in err[0]) and "was prepared with" in err[0], err
    assert not run.exists()
    settings = json.loads((out / "meta.json").read_text())["settings"]
    same = [f"--level={settings['level']}"] + (["--lowercase"] if settings["lowercase"] else [])  # the store's own values: fine
    same += ["--line-breaks", "token", "--batching", "stream", "--batch-size", "2"] if settings["line_breaks"] == "token" else []
    assert main(["train", "lm", str(out), *same, "--hidden-size", "4", "--max-steps", "1", "--no-progress", "--run", str(run)]) == 0


@pytest.mark.parametrize("store", [False, True])
def test_stream_batching_without_held_out_lines_trains_without_validation_as_sentences_do(tmp_path, capsys, store):
    """--split 0 0 with --batching stream was refused for a 0-token validation split, and the remedies
    the error named (--split, --valid) were refused on a prepared store: the user was stuck. An empty
    held-out split is no split, for streams as for sentences."""
    from rnnkit.cli import main

    data = write(tmp_path / "words.txt", "".join(f"the cat number {i} sat .\n" for i in range(60)))
    if store:
        assert main(["prepare", data, "--split", "0", "0", "--out", str(tmp_path / "store"), "--no-progress"]) == 0
        data = str(tmp_path / "store")
    split = [] if store else ["--split", "0", "0"]
    run = tmp_path / "run"
    assert main(["train", "lm", data, *split, "--batching", "stream", "--batch-size", "2", "--hidden-size", "4", "--epochs", "1",
                 "--no-progress", "--run", str(run)]) == 0, capsys.readouterr().err  # fmt: skip
    summary = json.loads((run / "summary.json").read_text())
    assert summary["finished"] and "best_valid_criterion" not in summary  # trained, with no validation


def test_a_stores_seen_lines_cut_to_whole_keys_are_named_not_read(tmp_path):
    """seen.u64 cut to a whole number of 8-byte keys passed the store's checks: lines of the training
    text were then marked "novel" in every run trained from it."""
    out = tmp_path / "store"
    prepare_corpus(LMDataConfig(train=[write(tmp_path / "text.txt", "".join(f"line {i}\n" for i in range(40)))], level="word"), out=out)
    assert prepare_corpus(LMDataConfig(train=[str(out)])).meta["seen_lines"] > 1
    keys = (out / "seen.u64").read_bytes()
    (out / "seen.u64").write_bytes(keys[:-8])
    with pytest.raises(DataError, match=r"store: not a complete prepared corpus \(seen.u64 holds \d+ training lines, meta.json says \d+\)"):
        prepare_corpus(LMDataConfig(train=[str(out)]))


def test_a_stores_edited_vocabulary_and_damaged_files_are_named_not_read(tmp_path):
    """Two tokens swapped in a store's vocab.json read every id of them as the other word, in the
    runs trained from it and in what a resume wrote into the run; a damaged tokenizer.json or a
    missing split file was an error naming no file."""
    import shutil

    out = tmp_path / "store"
    prepare_corpus(LMDataConfig(train=[write(tmp_path / "text.txt", "".join(f"line {i} of the text\n" for i in range(40)))], level="word"), out=out)
    edits = {
        "vocab.json": (lambda d: (d / "vocab.json").write_text((d / "vocab.json").read_text().replace('"line"', '"LINE"')),
                       r"vocab.json: changed since rnnkit prepare wrote it"),
        "tokenizer.json": (lambda d: (d / "tokenizer.json").write_text("garbage"), r"tokenizer.json: changed since rnnkit prepare wrote it"),
        "test.ids": (lambda d: (d / "test.ids").unlink(), r"test.ids: no such file or directory: not a complete prepared corpus"),
        "meta.json": (lambda d: (d / "meta.json").write_text("{"), r"meta.json: damaged, not a JSON file of rnnkit prepare's"),
    }  # fmt: skip
    for name, (edit, message) in edits.items():
        copy = tmp_path / f"edited-{name}"
        shutil.copytree(out, copy)
        edit(copy)
        with pytest.raises(DataError, match=message):
            prepare_corpus(LMDataConfig(train=[str(copy)]))


def test_tokenizing_workers_leave_ctrl_c_to_the_main_process():
    """Ctrl-C reaches every process of the terminal's group: workers that ignore it let the main
    process stop the pool and say "interrupted" once, instead of a traceback from each worker."""
    import multiprocessing
    import signal

    before = signal.getsignal(signal.SIGINT)  # (a job started in the background ignores it already)
    with multiprocessing.get_context("fork").Pool(1, initializer=corpus_module._worker_ignores_interrupts, initargs=(os.getpid(),)) as pool:
        assert pool.apply(signal.getsignal, (signal.SIGINT,)) == signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) == before  # the main process's own handling is left as it was


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the workers ask Linux's prctl to end with their parent")
def test_tokenizing_workers_end_silently_when_the_main_process_is_killed(tmp_path):
    """kill -9 of rnnkit prepare: the workers went on without it, an orphan idling forever or one
    printing a BrokenPipeError traceback into the user's terminal; now they end with it, silently."""
    import multiprocessing
    import signal
    import time

    log, pids = tmp_path / "stderr.txt", tmp_path / "worker.pid"
    middle = os.fork()
    if middle == 0:  # the "main process" that the test kills: never returns into pytest
        try:
            os.dup2(os.open(log, os.O_WRONLY | os.O_CREAT), 2)
            sys.stderr = open(2, "w", closefd=False)  # (pytest's capture replaced the Python-level one)
            pool = multiprocessing.get_context("fork").Pool(1, initializer=corpus_module._worker_ignores_interrupts, initargs=(os.getpid(),))
            pids.write_text(str(pool.apply(os.getpid)))
            pool.apply_async(time.sleep, (0.5,))  # busy when its parent dies
            time.sleep(0.2)  # the pool's thread hands it the task
        finally:
            os.kill(os.getpid(), signal.SIGKILL)
    os.waitpid(middle, 0)
    worker, deadline = int(pids.read_text()), time.monotonic() + 10

    def running() -> bool:  # a zombie (ended, not yet reaped by init) has ended
        try:
            return Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    while running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running() and "Traceback" not in log.read_text()


def test_scratch_directories_of_processes_killed_with_9_are_removed_by_the_next(tmp_path, monkeypatch):
    """A kill -9 leaves an eval's or a temporary corpus's scratch directory in the temp folder; the
    next one made removes those whose process is gone, never one of a live process."""
    import subprocess
    import tempfile

    from rnnkit.files import scratch, scratch_directory

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.Popen(["true"])
    dead.wait()  # a pid that existed and is gone
    (tmp_path / f"rnnkit-eval-{dead.pid}-abc").mkdir()
    (tmp_path / f"rnnkit-eval-{dead.pid}-abc" / "file.ids").write_bytes(b"x")
    live = tmp_path / f"rnnkit-eval-{os.getppid()}-def"  # the test runner's parent: alive
    live.mkdir()
    with scratch("eval") as directory:
        assert directory.name.startswith(f"rnnkit-eval-{os.getpid()}-") and directory.is_dir()
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted([directory.name, live.name])
    assert not directory.exists() and live.exists()
    assert scratch_directory("corpus").parent == tmp_path


def test_prepare_out_never_removes_a_live_builders_folder(tmp_path, capsys):
    """Two ``prepare --out`` into one folder: the second deleted the first's build folder under it (the
    first then failed with a bare "no such file"). A build folder of a live process is refused in one
    line; one a killed process left is removed and the build goes on."""
    import subprocess

    from rnnkit.cli import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat\non the mat\n" * 50)
    out = tmp_path / "P"
    live = tmp_path / f"P.tmp-{os.getppid()}"
    live.mkdir()
    assert main(["prepare", str(text), "--out", str(out)]) == 2
    assert "another rnnkit prepare (process" in capsys.readouterr().err and live.exists() and not out.exists()
    live.rmdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (tmp_path / f"P.tmp-{dead.pid}").mkdir()
    assert main(["prepare", str(text), "--out", str(out)]) == 0
    assert out.is_dir() and not list(tmp_path.glob("P.tmp-*"))


def test_a_prepare_that_fails_leaves_no_folder_it_made(tmp_path, capsys):
    """``rnnkit prepare bin.dat --out a/b/c`` refused the file in one line and left a/b behind; a folder
    that was there before stays, and so does one another process wrote into meanwhile."""
    from rnnkit.cli import main

    (tmp_path / "bin.dat").write_bytes(b"text, then \xf0\x28 not UTF-8\n")
    (tmp_path / "one.txt").write_text("one line\n")
    assert main(["prepare", str(tmp_path / "bin.dat"), "--out", str(tmp_path / "a" / "b" / "c")]) == 2
    assert "not UTF-8" in capsys.readouterr().err and not (tmp_path / "a").exists()
    (tmp_path / "mine").mkdir()
    assert main(["prepare", str(tmp_path / "one.txt"), "--out", str(tmp_path / "mine" / "b" / "c")]) == 2  # too few lines to split
    assert "too few" in capsys.readouterr().err and [p.name for p in tmp_path.joinpath("mine").iterdir()] == []


def test_bpe_vocab_that_would_do_nothing_is_refused_by_prepare_and_on_a_prepared_corpus(tmp_path, capsys):
    """``prepare --bpe-vocab`` without ``--level bpe`` was accepted and did nothing; ``train lm PREPARED
    --bpe-vocab N`` without ``--level`` trained on the store's own vocabulary size, silently."""
    from rnnkit.cli import main

    text = tmp_path / "text.txt"
    text.write_text("the cat sat on the mat\n" * 60)
    assert main(["prepare", str(text), "--bpe-vocab", "300", "--out", str(tmp_path / "P0"), "--no-progress"]) == 2
    assert "--bpe-vocab sizes the vocabulary of --level bpe, not char" in capsys.readouterr().err and not (tmp_path / "P0").exists()
    assert main(["prepare", str(text), "--out", str(tmp_path / "P"), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["train", "lm", str(tmp_path / "P"), "--bpe-vocab", "500", "--run", str(tmp_path / "r"), "--max-steps", "1", "--no-progress"]) == 2
    assert "--bpe-vocab 500: " in capsys.readouterr().err and not (tmp_path / "r").exists()


@pytest.mark.parametrize("cut", ["train.ids", "train.offsets", "valid.ids"])
def test_a_prepared_corpus_with_a_file_cut_short_is_refused_not_read_as_less(tmp_path, cut):
    """A file of a prepared corpus cut short (a full disk, a partial copy) trained on part of the
    data with the whole counts recorded, or ended in a traceback; it is one line now."""
    names = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon"] * 20
    directory = tmp_path / "prepared"
    prepare_corpus(LMDataConfig(train=[write(tmp_path / "n.txt", "\n".join(names) + "\n")], split=(0.1, 0.1)), out=directory)
    LanguageModelTask.prepare(LMDataConfig(train=[str(directory)]))  # whole: opens
    path = directory / cut
    os.truncate(path, path.stat().st_size // 2 // 8 * 8)  # whole int64 offsets, as a copy cut at a block would leave
    with pytest.raises(DataError, match="not a complete prepared corpus"):
        LanguageModelTask.prepare(LMDataConfig(train=[str(directory)]))


@pytest.mark.parametrize("failing", [False, True])
def test_a_file_changed_while_it_is_prepared_is_one_line_not_a_traceback_or_a_mixed_store(tmp_path, monkeypatch, failing):
    """A crawl still being written grew during ``prepare``: an IndexError from deep in the build, or
    (shrunk) a store of neither text recorded with the old size."""
    path = tmp_path / "n.txt"
    write(path, "\n".join(["anna", "bob", "carla", "dave"] * 30) + "\n")
    build = corpus_module._build

    def build_while_appending(*args, **kwargs):
        with open(path, "a") as f:
            f.write("emma\n" * 50)
        if failing:
            raise IndexError("permute: indices outside [0, 120)")
        return build(*args, **kwargs)

    monkeypatch.setattr(corpus_module, "_build", build_while_appending)
    with pytest.raises(DataError, match="changed while it was being prepared"):
        prepare_corpus(LMDataConfig(train=[str(path)]), out=tmp_path / "out")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob("out.tmp-*"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_named_pipe_is_refused_not_waited_on_forever(tmp_path):
    """A language model's text is read more than once: a second open of a pipe blocks for good."""
    import signal

    os.mkfifo(tmp_path / "pipe")

    def waited(signum, frame):
        raise TimeoutError("prepare waited on the pipe")

    previous = signal.signal(signal.SIGALRM, waited)  # a regression fails here instead of hanging the suite
    signal.alarm(30)
    try:
        with pytest.raises(DataError, match="is a pipe or a device, not a file"):
            prepare_corpus(LMDataConfig(train=[str(tmp_path / "pipe")]), out=tmp_path / "out")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_a_pad_token_written_in_the_text_is_read_not_dropped(tmp_path):
    """"<PAD>" in a text became id 0, which every loss skips: it vanished from training and from
    eval's counts. It reads as <UNK> now, in the prepared corpus as in ``Vocabulary.encode``."""
    lines = ["the <PAD> <PAD> said", "the said"] * 30
    corpus = prepare_corpus(LMDataConfig(train=[write(tmp_path / "t.txt", "\n".join(lines) + "\n")], level="whitespace", split=(0.1, 0.1)), cache=False)
    ids = np.concatenate([corpus.splits[name].ids[0 : corpus.splits[name].num_tokens] for name in corpus.splits])
    assert not (ids == corpus.vocab.pad_id).any() and (ids == corpus.vocab.unk_id).sum() == 2 * 30
    assert corpus.vocab.encode(["<PAD>", "the"]) == [corpus.vocab.unk_id, corpus.vocab.ids["the"]]


def test_an_eos_token_written_in_the_text_is_unknown_not_the_end_of_the_line(tmp_path):
    """"<EOS>" in a text became the end-of-sentence id in the middle of a line: the model learned to
    stop mid-line, and ``score`` did not flag it. Only the <EOS> rnnkit puts at a line's end is one."""
    lines = ["the dog <EOS> ran", "the said"] * 30
    corpus = prepare_corpus(LMDataConfig(train=[write(tmp_path / "t.txt", "\n".join(lines) + "\n")], level="whitespace", split=(0.1, 0.1)), cache=False)
    ids = np.concatenate([corpus.splits[name].ids[0 : corpus.splits[name].num_tokens] for name in corpus.splits])
    assert (ids == corpus.vocab.eos_id).sum() == 60 and (ids == corpus.vocab.unk_id).sum() == 30  # one per line; the typed one unknown
    assert corpus.vocab.encode(["<EOS>", "the"], eos=True) == [corpus.vocab.unk_id, corpus.vocab.ids["the"], corpus.vocab.eos_id]
    assert "<EOS>" not in corpus.vocab


def test_a_full_disk_while_preparing_names_the_folder_the_user_gave(tmp_path, monkeypatch):
    """``[Errno 28] No space left on device`` named nothing; a read-only mount named the temporary
    build folder (``out.tmp-3960``) rather than the --out the user typed."""
    import errno

    path = write(tmp_path / "n.txt", "\n".join(["anna", "bob"] * 30) + "\n")

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(corpus_module, "_build", full)
    with pytest.raises(DataError, match=rf"^the prepared corpus in {tmp_path / 'out'}: No space left on device .*; the disk is full\)"):
        prepare_corpus(LMDataConfig(train=[path]), out=tmp_path / "out")
    assert not list(tmp_path.glob("out*"))

    def too_large(*args, **kwargs):  # ulimit -f: write(2) names no file
        raise OSError(errno.EFBIG, os.strerror(errno.EFBIG))

    monkeypatch.setattr(corpus_module, "_build", too_large)
    with pytest.raises(DataError, match=r"File too large .*; a file size limit\? \(ulimit -f\)\)"):
        prepare_corpus(LMDataConfig(train=[path]), out=tmp_path / "out")


def test_a_prepared_corpus_among_text_files_is_named_as_what_it_is(tmp_path):
    """"p1: is a directory, expected a text file (or a prepared corpus from rnnkit prepare)" for a
    prepared corpus given with another file: the message contradicted itself."""
    path = write(tmp_path / "n.txt", "\n".join(["anna", "bob"] * 30) + "\n")
    prepare_corpus(LMDataConfig(train=[path]), out=tmp_path / "p1")
    with pytest.raises(DataError, match="is a prepared corpus, which is a run's only DATA"):
        prepare_corpus(LMDataConfig(train=[str(tmp_path / "p1"), path]), cache=False)
    (tmp_path / "folder").mkdir()  # a folder where a prepared corpus is no answer either: not offered
    with pytest.raises(DataError, match=r"folder: is a directory, expected a text file$"):
        prepare_corpus(LMDataConfig(train=[path], valid=str(tmp_path / "folder")), cache=False)
    with pytest.raises(DataError, match=r"folder: is a directory, expected a text file \(or a prepared corpus from rnnkit prepare\)"):
        prepare_corpus(LMDataConfig(train=[str(tmp_path / "folder")]), cache=False)


def test_a_validation_file_that_is_also_a_training_file_is_said(tmp_path, capsys):
    """``--valid`` naming a training file was taken without a word: the validation figure then
    measures training text."""
    path = write(tmp_path / "n.txt", "\n".join(["anna", "bob"] * 30) + "\n")
    prepare_corpus(LMDataConfig(train=[path], valid=path), cache=False)
    assert "is also a training file" in capsys.readouterr().err
    os.link(path, tmp_path / "hard.txt")  # the same file under another name
    prepare_corpus(LMDataConfig(train=[path], test=str(tmp_path / "hard.txt")), cache=False)
    assert "--test" in (err := capsys.readouterr().err) and "is also a training file" in err


@pytest.mark.parametrize("change", ["vocab", "id", "offsets", "tokenizer"])
def test_a_prepared_corpus_changed_inside_is_one_line_not_a_traceback(tmp_path, change):
    """A vocab.json cut short, an id past the vocabulary, offsets out of order: IndexError and
    ValueError tracebacks from inside the model or the batches."""
    names = ["anna", "bob", "carla", "dave", "emma", "fred", "gina", "hank", "ida", "jon"] * 20
    directory = tmp_path / "prepared"
    corpus = prepare_corpus(LMDataConfig(train=[write(tmp_path / "n.txt", "\n".join(names) + "\n")], level="char", split=(0.1, 0.1)), out=directory)
    dtype = np.dtype(corpus.meta["dtype"])
    if change == "vocab":
        vocab = json.loads((directory / "vocab.json").read_text())
        (directory / "vocab.json").write_text(json.dumps({"tokens": vocab["tokens"][:5]}))
    elif change == "id":
        ids = np.fromfile(directory / "train.ids", dtype)
        ids[5] = len(corpus.vocab) + 7
        ids.tofile(directory / "train.ids")
    elif change == "offsets":
        offsets = np.fromfile(directory / "train.offsets", "<i8")
        offsets[3], offsets[4] = offsets[4], offsets[3]
        offsets.tofile(directory / "train.offsets")
    else:  # a word-level corpus's tokenizer: typed text cut by characters against its vocabulary
        (directory / "tokenizer.json").write_text('{"kind": "word", "lowercase": false}')
    if change in ("vocab", "tokenizer"):  # the digests meta.json records say so first
        with pytest.raises(DataError, match=rf"{change}.json: changed since rnnkit prepare wrote it"):
            LanguageModelTask.prepare(LMDataConfig(train=[str(directory)]))
        meta = json.loads((directory / "meta.json").read_text())
        del meta["digests"]  # a store prepared before they were recorded: its own consistency checks
        (directory / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="not a consistent prepared corpus"):  # when opened: before any run folder exists
        LanguageModelTask.prepare(LMDataConfig(train=[str(directory)]))


def test_a_line_of_invisible_characters_is_blank_at_every_level(tmp_path):
    """The BPE corpus kept a line of a zero-width space and a direction mark as a line of its own
    (an <EOS>), where the other levels drop it as blank: other line counts, another split."""
    pytest.importorskip("tokenizers")
    path = write(tmp_path / "zw.txt", "".join("the cat sat on the mat\n" if i % 2 else "\u200b\u200e\n" for i in range(40)))
    counts = {}
    for level in ("char", "word", "bpe"):
        corpus = prepare_corpus(LMDataConfig(train=[path], level=level, split=(0, 0), bpe_vocab=60), cache=False)
        counts[level] = len(corpus.splits["train"])
    assert counts == {"char": 20, "word": 20, "bpe": 20}


@pytest.mark.parametrize("level", ["char", "word"])
def test_a_line_too_long_to_tokenize_in_memory_is_refused_with_its_number(tmp_path, monkeypatch, tiny_pieces, level):
    """A line is held and tokenized whole: a 300 MB line of words needed about 20 GB, and the kernel
    killed the process with no message. A line longer than half the memory can tokenize is named."""
    per_byte = corpus_module.LEVELS[level].memory_per_byte
    monkeypatch.setattr(corpus_module, "usable_memory", lambda: 2 * per_byte * 400)  # lines of up to 400 bytes
    fine = "ab cd ef\n" * 30 + "x " * 190 + "\n"  # a line of 380 bytes
    data = LMDataConfig(train=[write(tmp_path / "fine.txt", fine)], level=level, split=(0.0, 0.0))
    prepare_corpus(data, cache=False)
    long = "ab cd ef\n" * 30 + "x " * 300 + "\nlast line\n"
    data = LMDataConfig(train=[write(tmp_path / "long.txt", long)], level=level, split=(0.0, 0.0))
    with pytest.raises(DataError, match=r"long.txt:31: a line of more than 0 MB, more than the memory this process may use can tokenize"):
        prepare_corpus(data, cache=False)
    assert corpus_module.longest_line_bytes("word", 24 * 2**30) > 100 * 2**20  # a 24 GB machine takes a 100 MB line of words


def test_a_fault_deep_in_a_file_read_in_pieces_is_named_from_its_piece_never_the_whole_file(tmp_path, tiny_pieces, monkeypatch):
    """Every pass that reads a corpus in pieces (the BPE fit through text_pieces, with --valid given)
    read the whole file into memory to name a bad byte's line: a 5 GB corpus for one byte."""
    from rnnkit.data import textio

    monkeypatch.setattr(textio, "read_text", lambda *a: pytest.fail("the whole file was read"))
    path = tmp_path / "bad.txt"
    path.write_bytes("ligne un\r\nzwei\rdrei é\n".encode() + b"vier \xfe\n")
    with pytest.raises(DataError, match=r"bad\.txt:4: not UTF-8 text \(byte 0xfe at column 6\)$"):
        list(corpus_module.text_pieces(path))
    path.write_bytes(b"ligne un\nzwei\nvi\x00er\n")
    with pytest.raises(DataError, match=r"bad\.txt:3: a NUL character at column 3"):
        list(corpus_module.text_pieces(path))


def test_a_cached_store_damaged_on_disk_is_prepared_again_not_refused_for_ever(tmp_path, monkeypatch, capsys):
    """A store whose meta.json survived a power cut while its ids did not was opened, found
    incomplete, and refused with "prepare it again", which prepare did not do: every later
    train and prepare of the file failed until the user found the cache folder."""
    path = tmp_path / "train.txt"
    write(path, "anna\nbob\ncarla\ndave\nemma\nfred\ngina\nhank\n" * 5)
    data = lambda: LMDataConfig(train=[str(path)])  # noqa: E731
    first = prepare_corpus(data(), cache=tmp_path / "cache")
    ids = sorted(first.directory.glob("*.ids"))[0]
    ids.write_bytes(b"")
    again = prepare_corpus(data(), cache=tmp_path / "cache")
    err = capsys.readouterr().err
    assert "not a complete prepared corpus" in err and ": preparing it again\n" in err
    assert again.directory == first.directory and ids.stat().st_size > 0
    out = tmp_path / "out"
    prepare_corpus(data(), out=out)
    sorted(out.glob("*.ids"))[0].write_bytes(b"")
    with pytest.raises(DataError, match=r"not a complete prepared corpus .*: delete it or choose another --out$"):
        prepare_corpus(data(), out=out)


def test_prepare_out_through_a_link_writes_into_the_linked_folder(tmp_path, capsys, monkeypatch):
    """--out naming a link to an empty folder (a bigger disk) replaced the link with a folder beside
    it, and left the renamed link behind; a store given with --out was opened and --out ignored; an
    empty mount point failed after the whole corpus was built, on the parent's disk."""
    from rnnkit.cli import main
    from rnnkit.errors import UsageError

    train = write(tmp_path / "text.txt", "".join(f"line {i} of the text\n" for i in range(40)))
    (tmp_path / "disk").mkdir()
    (tmp_path / "store").symlink_to(tmp_path / "disk")
    assert main(["prepare", train, "--out", str(tmp_path / "store"), "--no-progress"]) == 0
    assert (tmp_path / "store").is_symlink() and (tmp_path / "disk" / "meta.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "store", "text.txt"]  # nothing left beside them
    capsys.readouterr()
    assert main(["prepare", str(tmp_path / "disk"), "--out", str(tmp_path / "copy")]) == 2
    assert "is a prepared corpus already; --out prepares text files" in capsys.readouterr().err and not (tmp_path / "copy").exists()
    (tmp_path / "mount").mkdir()
    monkeypatch.setattr(corpus_module.os.path, "ismount", lambda path: Path(path).name == "mount")
    with pytest.raises(UsageError, match=r"--out .*mount: a mount point"):
        prepare_corpus(LMDataConfig(train=[train]), out=tmp_path / "mount")
    assert not list(tmp_path.glob("mount.tmp-*"))


def test_eval_on_a_full_temporary_disk_names_the_folder(tmp_path, capsys, monkeypatch):
    """``rnnkit eval`` encodes its text into a temporary folder; a full disk there said only
    "[Errno 28] No space left on device", where training and prepare name the folder and the cause."""
    import errno
    import io

    from rnnkit.cli import main

    data = write(tmp_path / "words.txt", "".join(f"the cat number {i} sat .\n" for i in range(60)))
    run = tmp_path / "run"
    assert main(["train", "lm", data, "--split", "0", "0", "--batching", "stream", "--batch-size", "2", "--hidden-size", "4", "--max-steps", "1",
                 "--no-progress", "--run", str(run)]) == 0  # fmt: skip
    capsys.readouterr()

    def full(*args, **kwargs):  # a file closed on a full disk: an OSError that carries no file name
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(corpus_module, "_build", full)
    for source in (data, "-"):
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(Path(data).read_bytes())))
        assert main(["eval", str(run), source]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "the temporary folder" in err and "the disk is full" in err and "TMPDIR" in err, err


def test_the_line_break_token_is_kept_whatever_min_count_and_max_vocab_say(tmp_path):
    """With ``--line-breaks token``, ``--min-count`` or ``--max-vocab`` read every line break as <UNK>
    (a note counted them among the <UNK>s, unnamed): samples never broke a line. The line break ends
    lines as <EOS> does otherwise, and is kept as <EOS> is."""
    text = write(tmp_path / "lines.txt", "".join("abababababcd\n" for _ in range(40)))
    for limits in ({"min_count": 100}, {"max_vocab": 5}):
        corpus = prepare_corpus(LMDataConfig(train=[text], level="char", batching="stream", line_breaks="token", split=(0.0, 0.0), **limits))
        assert "\n" in corpus.vocab.tokens, limits
        assert corpus.vocab.tokens.index("\n") != corpus.vocab.unk_id
    corpus = prepare_corpus(LMDataConfig(train=[text], level="char", batching="stream", line_breaks="token", split=(0.0, 0.0), max_vocab=5))
    assert set(corpus.vocab.tokens) == {"<PAD>", "<UNK>", "<EOS>", "a", "\n"}  # the room left goes to the commonest others
