"""Skip-gram word vectors (word2vec, Mikolov et al. 2013, via gensim) trained on the text of
../shared/data that is no test or validation set of SST-5: the Penn Treebank's training text, SST-5's
training sentences (labels cut off; brackets as the trees write them), CoNLL-2003's eng.train words
and Multi30k's English training captions, all lowercased: 93,653 lines, 1.63 M words. Written in the
word2vec text format that ``--word-vectors`` reads. gensim is not a dependency of rnnkit:
``pip install gensim`` first.

    python benchmarks/word2vec_vectors.py --dimension 64 --epochs 15 --out w2v64.txt

docs/benchmarks.md (issue 21, SST-5) gives the classifier's command and figures.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def sentences(data: Path = DATA) -> Iterator[list[str]]:
    """The training text, a list of lowercased tokens per sentence."""
    with open(data / "ptb" / "ptb.train.txt", encoding="utf-8") as lines:
        yield from (line.split() for line in lines)
    with open(data / "sst5" / "tabular" / "sst_train.txt", encoding="utf-8") as lines:  # label<TAB>sentence
        yield from (line.split("\t", 1)[1].lower().replace("(", "-lrb-").replace(")", "-rrb-").split() for line in lines)
    sentence: list[str] = []
    with open(data / "conll2003" / "eng.train", encoding="utf-8") as lines:  # a word per line, blank between sentences
        for line in lines:
            fields = line.split()
            if fields and fields[0] != "-DOCSTART-":
                sentence.append(fields[0].lower())
            elif sentence:
                yield sentence
                sentence = []
    if sentence:
        yield sentence
    with open(data / "multi30k" / "tok" / "train.lc.norm.tok.en", encoding="utf-8") as lines:
        yield from (line.split() for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dimension", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--out", default="w2v64.txt")
    args = parser.parse_args()
    from gensim.models import Word2Vec

    corpus = list(sentences())
    print(f"{len(corpus):,} sentences, {sum(map(len, corpus)):,} words")
    start = time.perf_counter()
    model = Word2Vec(corpus, vector_size=args.dimension, window=5, min_count=1, sg=1, negative=10, epochs=args.epochs, workers=2, seed=0)
    print(f"trained in {time.perf_counter() - start:.0f} s; nearest to 'good': {[w for w, _ in model.wv.most_similar('good')[:5]]}")
    model.wv.save_word2vec_format(args.out)


if __name__ == "__main__":
    main()
