"""``rnnkit prepare FILE...``: tokenize a language model's text once into a prepared corpus (token
ids on disk, the vocabulary and tokenizer beside them; ``rnnkit.data.corpus``), to train from it
elsewhere (``rnnkit train lm DIR``) or to fill the cache that ``rnnkit train lm FILE`` reads.
Parsing and wiring only."""

from __future__ import annotations

from ._options import add_settings, nonempty_text, output_folder

EXAMPLES = """examples:
  rnnkit prepare big.txt --level word --out corpora/big-word      # then: rnnkit train lm corpora/big-word
  rnnkit prepare big.txt                                          # into the cache that rnnkit train lm big.txt reuses
"""


def add_parser(subparsers) -> None:
    import argparse

    parser = subparsers.add_parser(
        "prepare",
        help="tokenize a language model's text once into token ids on disk (for big corpora)",
        description="Tokenize text files once, streaming (memory bounded by the longest line, not the corpus), into token ids on disk with their vocabulary; "
        "rnnkit train lm reads them. The tokenization options are those of rnnkit train lm.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("train", nargs="+", metavar="DATA", type=nonempty_text, help="training text file(s)")
    parser.add_argument("--out", type=output_folder, help="directory to write (default: the cache, ~/.cache/rnnkit or $RNNKIT_CACHE)")
    add_settings(parser, _corpus_settings())
    parser.add_argument("--no-progress", dest="progress", action="store_false", default=None, help="no progress bar")
    parser.set_defaults(verb="prepare")


def _corpus_settings() -> list:
    """The language model's data settings that make a prepared corpus (its files and tokenization:
    ``rnnkit.data.text.CORPUS_SETTINGS``), as ``rnnkit train lm`` has them; read without importing torch."""
    from ..data.text import CORPUS_SETTINGS
    from ..settings import settings_of
    from ..tasks.language_model_spec import LMDataConfig

    return [row for row in settings_of(LMDataConfig) if row[0] in ("valid", "test", *CORPUS_SETTINGS)]


def run(args) -> int:
    from ..data.corpus import prepare_corpus
    from ..settings import refuse_unapplied
    from ..tasks.base import given_settings
    from ..tasks.language_model import LanguageModelTask, say_if_presegmented

    from ..files import shell_path

    keys = ["train"] + [name for name, *_ in _corpus_settings()]
    # batching is not a setting of the store (both read it): "stream" admits either line-break rule
    given = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    data = given_settings(LanguageModelTask.data_config({"batching": "stream", **given}), given)
    refuse_unapplied(data, given)  # --bpe-vocab without --level bpe: refused, as rnnkit train lm refuses it
    say_if_presegmented(data)  # as rnnkit train lm says it
    corpus = prepare_corpus(data, cache=True, out=args.out, progress=args.progress)
    counts = ", ".join(f"{name} {lines:,} lines ({corpus.meta['tokens'][name]:,} tokens)" for name, lines in corpus.meta["lines"].items())
    print(f"{corpus.directory}: {counts}; vocabulary {len(corpus.vocab):,} tokens ({corpus.meta['dtype'][1:]})")
    print(f"train from it with: rnnkit train lm {shell_path(corpus.directory)}")
    return 0
