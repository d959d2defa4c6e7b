"""The music task: polyphonic sequences (JSB Chorales files, or a folder of MIDI files) in one of
two representations, trained one-to-many from x<1> = 0:

* ``piano-roll``: 88 independent Bernoulli outputs per step (``models/music.py``);
* ``events``: ``voices`` tokens per step (``p72``, ``rest``) and ``<EOS>`` at the end, modelled by
  the language model (``models/language_model.py``) over that vocabulary.

Both report the negative log-likelihood per time step (nats), the benchmarks' measure; for events it
is the sum over the step's tokens (``<EOS>`` counted with the last step). ``transpose`` shifts each
training sequence by a random number of semitones in [-transpose, transpose] each epoch
(deterministic per seed and epoch), when the notes stay on the piano.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

import torch

from ..data.batches import SentenceBatches, check_sequence_lengths, pad_sequences
from ..data.music import KEYS, LOWEST, REST, Sequence, from_voice_tokens, notes_beyond_voices, piano_roll, read_chorales, read_midi_folder, to_voice_tokens, transpose
from ..data.text import fingerprint, split_lines
from ..data.textio import say_held_out_in_training
from ..data.vocab import Vocabulary
from ..models.losses import bernoulli_nll, token_loss
from ..models.music import sample_rolls
from ..files import RunDir
from ..distributed import SINGLE
from .base import TaskBase
from .music_spec import EVENT_DEFAULTS, MusicDataConfig, MusicSpec, PIANO_DEFAULTS, is_midi_folder  # noqa: F401  (its settings, imported from here too)
from ..errors import UsageError


def _read(path: str, step_seconds: float) -> dict[str, list[Sequence]]:
    """The pieces of a MIDI folder (as ``train``, sampled every ``step_seconds``) or of a JSB
    Chorales file (its splits)."""
    if is_midi_folder(path):
        return {"train": read_midi_folder(Path(path), step_seconds)}
    return read_chorales(Path(path))


def split_of(path: str, name: str, step_seconds: float) -> list[Sequence]:
    """The pieces of a ``--valid`` / ``--test`` / ``eval`` file: its own split ``name`` when it holds
    its splits (a JSB Chorales JSON), all of it when it is one set (a MIDI folder, a bare list)."""
    return split_in(_read(path, step_seconds), path, name)


def split_in(sequences: dict[str, list[Sequence]], path: str, name: str) -> list[Sequence]:
    """``split_of`` of the splits read from ``path`` already."""
    if name in sequences:
        return sequences[name]
    if set(sequences) == {"train"}:
        return sequences["train"]
    raise UsageError(f"{path}: holds the splits {', '.join(sequences)} but no {name!r} split to read")


def say_shifts_off_the_piano(pieces: list[Sequence], semitones: int) -> None:
    """Say how many of the shifts ``--transpose`` draws (uniform in [-semitones, semitones]) would
    take a training piece's notes off the piano, when that is a quarter or more: such a piece is
    kept unshifted, so a large value quietly made the augmentation mostly no shift at all."""
    shifts, off = 0, 0
    for piece in pieces:
        pitches = [p for step in piece for p in step]
        if not pitches:
            continue
        lowest, highest = min(pitches), max(pitches)
        room_down, room_up = lowest - LOWEST, LOWEST + KEYS - 1 - highest
        shifts += 2 * semitones + 1
        off += max(0, semitones - room_down) + max(0, semitones - room_up)
    if shifts and off >= shifts / 4:
        print(f"rnnkit: note: --transpose {semitones}: {off / shifts:.0%} of the shifts drawn would take a training piece's notes off the "
              f"piano ({LOWEST}..{LOWEST + KEYS - 1}), and such a piece is kept unshifted; a smaller --transpose shifts more of them",
              file=sys.stderr, flush=True)  # fmt: skip


class MusicTask(MusicSpec, TaskBase):
    """The work of the task that ``MusicSpec`` declares (its settings and ``rnnkit train`` help)."""

    vocabularies = {"vocab.json": "vocab"}  # events only (None with the piano roll: not saved)
    criterion = "validation NLL per time step"

    def __init__(self, data: MusicDataConfig, vocab: Vocabulary | None = None, splits=None):
        self.data = data
        self.vocab = vocab
        self.splits: dict[str, list[Sequence]] = splits or {}
        self.model_kind = "piano-roll" if data.representation == "piano-roll" else "lm"

    # -- configuration -----------------------------------------------------------------------------------
    def model_config(self, values: dict) -> dict:
        piano = self.model_kind == "piano-roll"
        sizes = {} if piano else {"vocab_size": len(self.vocab)}
        if piano and "embedding_size" in values:
            raise UsageError("--embedding-size is for --representation events; the piano roll is the input itself")
        if not piano and "input_dropout" in values:
            raise UsageError("--input-dropout is for --representation piano-roll; events use --dropout")
        return self._model_config(sizes, values, PIANO_DEFAULTS if piano else EVENT_DEFAULTS)

    def run_name_detail(self, model_config: dict) -> str:
        return f"{self.data.representation}-{model_config['cell']}"

    # -- building ----------------------------------------------------------------------------------------
    @classmethod
    def prepare(cls, data: MusicDataConfig, seed: int = 0):
        data.check()
        files = [(path, _read(path, data.step_seconds)) for path in data.train]
        splits = {"train": [s for _, read in files for s in read["train"]]}
        read_whole = []  # (option, path) of held-out files read whole: the training pieces, when one is a training file
        for name in ("valid", "test"):
            if held_out := getattr(data, name):
                read = _read(held_out, data.step_seconds)
                splits[name] = split_in(read, held_out, name)
                if name not in read and not is_midi_folder(held_out):  # folders: said by rnnkit.runs, as other tasks' files
                    read_whole.append((f"--{name}", held_out))
                continue
            holding = [path for path, read in files if name in read]
            if holding and len(holding) < len(files):  # a folder's pieces would all train, another file's split held out: said, not guessed
                lacking = next(str(path) for path, read in files if name not in read)
                raise UsageError(f"{holding[0]} holds its own {name} split, {lacking} has none: give --{name} (and the other held-out "
                                 "file), or training files that all hold their splits or none")
            if holding:  # every file's own split, not the first's alone
                splits[name] = [s for _, read in files for s in read[name]]
        say_held_out_in_training(read_whole, list(data.train))  # a file's own valid split is no training piece: not said
        record = {"train_files": list(data.train)}
        if "valid" not in splits and "test" not in splits:
            order = [str(i) for i in range(len(splits["train"]))]
            tr, va, te = split_lines(order, *data.split, seed=seed, what=f"pieces of {', '.join(map(str, data.train))}")
            pick = lambda ids: [splits["train"][int(i)] for i in ids]  # noqa: E731
            splits = {"train": pick(tr), "valid": pick(va), "test": pick(te)}
            record["made_split"] = {"valid": data.split[0], "test": data.split[1], "seed": seed}
        elif "split" in getattr(data, "given", ()):  # given, it would split nothing, and config.json would record it as if it had
            whence = "--valid/--test are given" if data.valid or data.test else f"{data.train[0]} holds its own valid and test splits"
            raise UsageError(f"--split splits the training pieces only when they come with no held-out ones, and {whence}: "
                             "it would do nothing here; leave it out")
        record["sequences"] = {k: len(v) for k, v in splits.items()}
        record["steps"] = {k: sum(map(len, v)) for k, v in splits.items()}
        record["train_fingerprint"] = fingerprint([repr(s) for s in splits["train"]])
        vocab = None
        if data.representation == "events":
            notes, beyond, steps = notes_beyond_voices([s for split in splits.values() for s in split], data.voices)
            if beyond:  # the voices are the highest notes of each step: chords of more lose their lowest
                print(f"rnnkit: {beyond} of {notes} note-steps (a note held k steps counts k times), in {steps} steps with more than --voices "
                      f"{data.voices} notes, are left out of the events (each step keeps its highest notes); a larger --voices keeps them", file=sys.stderr, flush=True)  # fmt: skip
            tokens = [to_voice_tokens(s, data.voices) for s in splits["train"]]
            if data.transpose:  # every transposed pitch must be in the vocabulary
                tokens += [[f"p{p}" for p in range(21, 109)]]
            # a rest too, should every training step be full (JSB with --voices 2): a prime's or a held-out
            # piece's step of fewer notes was read as <UNK>, and said to be an unlearned pitch
            vocab = Vocabulary.build([*tokens, [REST]])
        if data.transpose:
            say_shifts_off_the_piano(splits["train"], data.transpose)
        task = cls(data, vocab, splits)
        task.seed = seed
        for name, split in splits.items():  # one piece is one sequence: its padded batch and activations grow with it
            task.check_lengths(split, ", ".join(map(str, data.train)) if name == "train" or not getattr(data, name) else getattr(data, name), name)
        for name in ("valid", "test") if vocab is not None else ():  # held-out pitches no training piece has: scored as <UNK>, said
            unknown, _ = task.unreadable(splits.get(name, []))
            if unknown:
                print(f"rnnkit: note: the {name} pieces: {unknown}", file=sys.stderr, flush=True)
        return task, record

    @classmethod
    def read_file(cls, data: MusicDataConfig, path: str, train: bool = False) -> list[Sequence]:
        """The sequences of a file's test split (its only one: a MIDI folder, a file without splits),
        MIDI read at the run's ``step_seconds``."""
        return split_of(path, "test", data.step_seconds)

    def evaluate_file(self, model, path: str, device) -> dict:
        """``evaluate_examples`` on a file's pieces; with events, what the run cannot read of them is
        said (pitches it never learned, read as ``<UNK>``; notes beyond its voices, left out)."""
        sequences = self.read_file(self.data, path)
        self.check_lengths(sequences, path)
        if self.data.representation == "events" and (unreadable := "; ".join(filter(None, self.unreadable(sequences)))):
            print(f"rnnkit: note: {path}: {unreadable}", file=sys.stderr, flush=True)
        return self.evaluate_examples(model, sequences, device)

    def check_lengths(self, sequences: list[Sequence], where: str, split: str = "") -> None:
        """A ``DataError`` naming ``where`` for a piece longer than a sequence rnnkit reads as one
        (``MAX_SEQUENCE_STEPS``) in the model's steps: time steps, or ``voices`` tokens a step."""
        events = self.data.representation == "events"
        steps = ((len(s) * self.data.voices + 1 if events else len(s)) for s in sequences)  # events: and <EOS>
        check_sequence_lengths(steps, where + (f" ({split} pieces)" if split else ""),
                               "; cut the pieces shorter, or read MIDI at a larger --step-seconds")  # fmt: skip

    def unreadable(self, sequences: list[Sequence]) -> tuple[str | None, str | None]:
        """What an events run leaves out of ``sequences``, in words (None: nothing): note-steps of
        pitches its vocabulary lacks, and notes beyond ``voices`` in a step."""
        notes, beyond, _ = notes_beyond_voices(sequences, self.data.voices)
        unknown: dict[str, int] = {}
        for sequence in sequences:
            for token in to_voice_tokens(sequence, self.data.voices):
                if token not in self.vocab and token != REST:  # a run of before rests were in every vocabulary: not a pitch
                    unknown[token] = unknown.get(token, 0) + 1
        unknown_said = beyond_said = None
        if unknown:
            learned = sorted(int(t[1:]) for t in self.vocab.ids if t.startswith("p") and t[1:].isdigit())
            span = f" (it learned p{learned[0]}-p{learned[-1]})" if learned else ""
            names = sorted(unknown, key=lambda t: (len(t), t))
            shown = ", ".join(names[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
            unknown_said = f"{sum(unknown.values()):,} of {notes:,} note-steps are pitches the run never learned, {shown}{span}, read as <UNK>"
        if beyond:
            beyond_said = f"{beyond:,} note-steps beyond --voices {self.data.voices} in their step are left out"
        return unknown_said, beyond_said

    @classmethod
    def load(cls, run: RunDir, data: MusicDataConfig):
        vocab = run.read_vocabulary("vocab.json") if data.representation == "events" else None
        return cls(data, vocab)

    # -- batches ------------------------------------------------------------------------------------------
    def _encode(self, sequence: Sequence) -> list[int]:
        return self.vocab.encode(to_voice_tokens(sequence, self.data.voices), eos=True)

    def _collate(self, sequences: list[Sequence]):
        if self.data.representation == "events":
            return pad_sequences([self._encode(s) for s in sequences])
        rolls = [piano_roll(s) for s in sequences]
        lengths = torch.tensor([len(r) for r in rolls])
        batch = torch.zeros(int(lengths.max()), len(rolls), KEYS)
        for b, roll in enumerate(rolls):
            batch[: len(roll), b] = roll
        return batch, lengths

    def batches_of(self, sequences: list[Sequence], train: bool, epoch: int = 0):
        if train and self.data.transpose:
            rng = random.Random((self.seed * 1_000_003 + epoch) * 9973 + 17)  # per --seed and epoch: a resumed run shifts alike
            shifted = [transpose(s, rng.randint(-self.data.transpose, self.data.transpose)) for s in sequences]
            sequences = [t if t is not None else s for t, s in zip(shifted, sequences)]
        return SentenceBatches(sequences, self.data.batch_size if train else self.data.eval_batch_size, seed=self.seed, shuffle=train, collate=self._collate)

    # -- the trainer's Task protocol -----------------------------------------------------------------------
    def train_batches(self, epoch: int, start: int, shard=SINGLE):
        return self.batches_of(self.splits["train"], True, epoch).iterate(epoch, start, shard)

    def loss(self, model, batch, device):
        """(summed NLL, number of time steps) for either representation."""
        if self.data.representation == "events":
            batch = batch.to(device)
            logits = model(batch.tokens, lengths=batch.lengths).logits  # (T, B, V)
            total, tokens = token_loss(logits, batch.tokens, self.vocab.pad_id)
            return total, (tokens - len(batch.lengths)) // self.data.voices  # steps: tokens without <EOS>
        rolls, lengths = batch
        logits = model(rolls.to(device), lengths=lengths).logits  # (T, B, 88)
        return bernoulli_nll(logits, rolls.to(device), lengths)

    def evaluate_examples(self, model, sequences: list[Sequence], device) -> dict:
        total, steps = self.summed_loss(model, self.batches_of(sequences, False), device)
        return {"loss": total / max(steps, 1), "nll_per_step": total / max(steps, 1), "count": steps}

    def describe(self, result: dict) -> str:
        return f"NLL {result['nll_per_step']:.3f} nats per time step ({result['count']} steps)"

    # -- for the CLI -----------------------------------------------------------------------------------------
    def inspect_forward(self, model, text: str, device):
        raise UsageError("inspect reads text; a music run reads notes (see rnnkit compose and rnnkit gradients)")

    def compose(self, model, steps: int, *, num: int = 1, temperature: float = 1.0, primer: Sequence | None = None, seed=None, device="cpu", until_end: bool = False) -> list[Sequence]:
        """``num`` new sequences of ``steps`` steps (a primer plays first and is kept); with events
        and ``until_end``, a piece may end earlier, where the model writes ``<EOS>``."""
        from ..decoding import SamplingOptions, sample

        if steps < 1:
            raise UsageError(f"steps must be at least 1, got {steps}")
        if self.data.representation == "piano-roll":
            divisor = SamplingOptions(temperature=temperature).check().divisor  # a tiny temperature: no 0 / 0 in float32
            rolls = sample_rolls(model, steps, num=num, temperature=divisor, primer=piano_roll(primer) if primer else None, seed=seed, device=device)
            from ..data.music import roll_to_sequence

            return [roll_to_sequence(rolls[:, b]) for b in range(num)]
        unknown, beyond = self.unreadable([primer]) if primer else (None, None)
        if unknown:  # it would play as silence, written out as if it were the prime
            raise UsageError(f"the prime: {unknown}; transpose it into the run's range (or train with --transpose)")
        if beyond:  # a chord wider than the voices: its highest notes, as training read every piece
            print(f"rnnkit: note: the prime: {beyond}", file=sys.stderr, flush=True)
        prime = self.vocab.encode(to_voice_tokens(primer, self.data.voices)) if primer else []
        options = SamplingOptions(temperature=temperature, max_length=steps * self.data.voices - len(prime))
        banned = [self.vocab.pad_id, self.vocab.unk_id] + ([] if until_end else [self.vocab.eos_id])
        rows = sample(model, num, options, eos_id=self.vocab.eos_id, banned=banned, prime=prime, seed=seed, device=device)
        return [from_voice_tokens(self.vocab.decode(prime + ids), self.data.voices) for ids in rows]
