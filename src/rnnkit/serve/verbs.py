"""What each kind of run answers, in a registry (``VERBS_BY_TASK``): the request schema, whether
requests are micro-batched, a check that runs before queueing (a ValueError is the client's 400), and
the batch function, which calls the task's own inference (``rnnkit.tasks``) once for the whole batch.

A batch function takes the loaded model and a list of requests and returns one result per request
(an Exception for a request that failed alone). It runs in the server's worker thread.
"""

from __future__ import annotations

import base64
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from ..errors import UsageError
from ..tasks.base import typed_tokens
from . import schemas


@dataclass
class Served:
    """One run loaded for serving."""

    name: str
    path: str
    task: object
    model: torch.nn.Module
    config: dict
    device: torch.device
    metrics: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.config["task"]


@dataclass
class Verb:
    name: str
    schema: type[schemas.Request]
    run: Callable[[Served, list], list]
    batched: bool = False
    check: Callable[[Served, schemas.Request], None] = lambda served, request: None
    summary: str = ""


def _split(results: list, sizes: list[int]) -> list[list]:
    out, i = [], 0
    for n in sizes:
        out.append(results[i : i + n])
        i += n
    return out


# -- tagger -----------------------------------------------------------------------------------------


def _tag_check(served: Served, request: schemas.TagRequest) -> None:
    for text in request.all_texts():
        if not served.task.typed_words(text):
            raise ValueError(f"nothing to tag: {text[:40]!r} has no words")


def _tag(served: Served, requests: list[schemas.TagRequest]) -> list:
    from ..data.conll import TaggedSentence, entities

    texts = [t for r in requests for t in r.all_texts()]
    tokens = [served.task.typed_words(t) for t in texts]  # as TaggingTask.tag_text cuts typed text
    tags = served.task.predict(served.model, [TaggedSentence(words, []) for words in tokens], served.device)
    results = [
        {"text": text, "tokens": words, "tags": t, "entities": [{"text": " ".join(words[s:e]), "type": kind, "start": s, "end": e} for kind, s, e in entities(t)]}
        for text, words, t in zip(texts, tokens, tags)
    ]
    return [{"results": part} for part in _split(results, [len(r.all_texts()) for r in requests])]


# -- classifier -------------------------------------------------------------------------------------


def _classify(served: Served, requests: list[schemas.ClassifyRequest]) -> list:
    texts = [t for r in requests for t in r.all_texts()]
    results = served.task.classify(served.model, texts, served.device)
    for result in results:
        result["probabilities"] = dict(sorted(result["probabilities"].items(), key=lambda item: -item[1]))
    return [{"results": part} for part in _split(results, [len(r.all_texts()) for r in requests])]


# -- language model ---------------------------------------------------------------------------------


def _score_check(served: Served, request: schemas.ScoreRequest) -> None:
    task = served.task
    for text in request.all_texts():
        if not task.vocab.encode(typed_tokens(task.tokenizer, task.vocab, text), eos=task.data.line_breaks == "eos"):
            raise ValueError(f"nothing to score: {text[:40]!r} has no tokens")


def _score(served: Served, requests: list[schemas.ScoreRequest]) -> list:
    out = []
    for request in requests:  # one teacher-forced pass per text (LanguageModelTask.score_text)
        try:
            out.append({"results": [served.task.score_text(served.model, text, served.device) for text in request.all_texts()]})
        except ValueError as error:
            out.append(error)
    return out


def _generate_check(served: Served, request: schemas.GenerateRequest) -> None:
    """A prime the model cannot start from (a line break where each line is a sentence), refused with
    the field's name before the request is queued, as ``rnnkit sample`` refuses its ``--prime``."""
    if request.prime:
        try:
            served.task.prime_tokens(request.prime, name="prime")
        except UsageError as error:
            raise ValueError(str(error)) from None


def _generate(served: Served, requests: list[schemas.GenerateRequest]) -> list:
    from ..decoding import SamplingOptions

    out = []
    for r in requests:
        options = SamplingOptions(r.temperature, r.top_k, r.top_p, r.greedy, r.max_length).check()
        samples = served.task.generate(served.model, r.num, options, seed=r.seed, prime=r.prime, device=served.device)
        out.append({"samples": [{"text": text, "novel": not seen} for text, seen in samples]})
    return out


# -- translation ------------------------------------------------------------------------------------


def _translate_check(served: Served, r: schemas.TranslateRequest) -> None:
    if r.replace_unk and served.model.attention is None:  # as rnnkit translate refuses it: it would be ignored
        raise ValueError("replace_unk copies the source word the attention points at, and this model was trained with --attention none")
    beam = r.beam or served.task.data.beam  # the run's beam when the request names none
    if r.nbest > beam:  # the task's own rule (TranslationTask.translate), said before queueing
        whose = "" if r.beam else ", the run's"
        raise ValueError(f"nbest ({r.nbest}) cannot exceed beam ({beam}{whose})")
    if r.attention and served.model.attention is not None:  # a reply of hundreds of megabytes held the server for minutes
        from ..decoding.search import max_target_length

        task = served.task
        sources = [len(task.typed_source(text)) or 1 for text in r.all_texts()]
        most = sum(r.nbest * limit * n for n, limit in zip(sources, max_target_length(sources, task.data.length_ratio, task.data.length_extra)))
        if most > schemas.MAX_ATTENTION:
            raise ValueError(f"the attention weights of these translations could be {most:,} numbers, more than {schemas.MAX_ATTENTION:,} a reply; "
                             'ask for "attention": false, fewer or shorter texts, or a smaller nbest')


def _translate(served: Served, requests: list[schemas.TranslateRequest]) -> list:
    task = served.task
    out: list = [None] * len(requests)
    groups: dict[tuple, list[int]] = {}
    for i, r in enumerate(requests):  # one beam search per set of settings
        groups.setdefault((r.beam or task.data.beam, r.nbest, r.replace_unk), []).append(i)
    for (beam, nbest, replace_unk), members in groups.items():
        texts = [t for i in members for t in requests[i].all_texts()]
        owners = [i for i in members for _ in requests[i].all_texts()]  # each text's request: its own attention setting
        translations = task.translate(served.model, texts, served.device, beam=beam, nbest=nbest, replace_unk=replace_unk, typed=True)
        results = []
        for text, owner, hypotheses in zip(texts, owners, translations):
            source = task.typed_source(text)  # the tokens the model read (attention's columns), as translate cut them
            results.append({
                "text": text, "source_tokens": source,
                "translations": [
                    {"text": h["text"], "tokens": h["tokens"] + (["<EOS>"] if len(h["attention"]) > len(h["tokens"]) else []), "score": h["score"], "log_prob": h["log_prob"],
                     **({"attention": [row[: len(source)] for row in h["attention"]]} if requests[owner].attention and h["attention"] else {})}
                    for h in hypotheses
                ],
            })  # fmt: skip
        for i, part in zip(members, _split(results, [len(requests[i].all_texts()) for i in members])):
            out[i] = {"results": part}
    return out


# -- music ------------------------------------------------------------------------------------------


def _compose(served: Served, requests: list[schemas.ComposeRequest]) -> list:
    from ..data.music import write_midi
    from ..plots import plot_piano_roll

    out = []
    for r in requests:
        pieces = served.task.compose(served.model, r.steps, num=r.num, temperature=r.temperature, seed=r.seed, device=served.device)
        step_seconds = r.step_seconds if r.step_seconds is not None else served.task.data.step_seconds  # as the run read MIDI
        rendered = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, piece in enumerate(pieces):
                midi, png = Path(tmp) / f"{i}.mid", Path(tmp) / f"{i}.png"
                write_midi(piece, midi, step_seconds=step_seconds, program=r.program)
                item = {"steps": piece, "num_steps": len(piece), "notes": sum(len(s) for s in piece), "midi_base64": base64.b64encode(midi.read_bytes()).decode()}
                if r.png and plot_piano_roll(piece, png, f"{len(piece)} steps"):
                    item["png_base64"] = base64.b64encode(png.read_bytes()).decode()
                rendered.append(item)
        out.append({"pieces": rendered, "step_seconds": step_seconds})
    return out


TAG = Verb("tag", schemas.TagRequest, _tag, batched=True, check=_tag_check, summary="entities and per-token tags")
CLASSIFY = Verb("classify", schemas.ClassifyRequest, _classify, batched=True, summary="label and class probabilities")
SCORE = Verb("score", schemas.ScoreRequest, _score, batched=True, check=_score_check, summary="log P per token and perplexity")
GENERATE = Verb("generate", schemas.GenerateRequest, _generate, check=_generate_check, summary="samples, each marked novel or seen in training")
TRANSLATE = Verb("translate", schemas.TranslateRequest, _translate, batched=True, check=_translate_check, summary="beam search, n-best, attention")
COMPOSE = Verb("compose", schemas.ComposeRequest, _compose, summary="new pieces as MIDI (base64) and piano-roll PNG")

# task kind -> the verbs its runs answer
VERBS_BY_TASK: dict[str, list[Verb]] = {
    "lm": [GENERATE, SCORE],
    "tagger": [TAG],
    "classifier": [CLASSIFY],
    "seq2seq": [TRANSLATE],
    "music": [COMPOSE],
}
ALL_VERBS = {verb.name: verb for verbs in VERBS_BY_TASK.values() for verb in verbs}
