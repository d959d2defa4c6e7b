"""``rnnkit compose RUN --length N --out song.mid``: new music from a trained music model.

One-to-many generation from x<1> = 0 (or after the opening of a --prime MIDI file): each step drawn
from the model and fed back.
"""

from __future__ import annotations

from pathlib import Path

from ._options import midi_file, midi_program, nonempty_text, piece_count, piece_length, positive_float, positive_int, seed, step_seconds, wav_file
from ..errors import UsageError
from ._inputs import warn
from ._run_options import add_plot, hidden_alias, open_verb_run, run_parser

PRIME_STEPS = 8  # the --prime file's opening played, when --prime-steps is not given


def add_parser(subparsers) -> None:
    parser = run_parser(subparsers, "compose", ["music"], description=__doc__)
    parser.add_argument("--length", type=piece_length, default=64, help="time steps to write (default 64)")
    hidden_alias(parser, "--steps", "length", type=piece_length)  # its name until generated and training steps got names of their own
    parser.add_argument("--until-end", action="store_true", help="voice-token models: stop where the model ends the piece (at most --length)")
    parser.add_argument("--out", default="song.mid", type=midi_file, help="MIDI file to write (default song.mid; with --num N: song-1.mid ... song-N.mid)")
    parser.add_argument("--num", type=piece_count, default=1, help="how many pieces (default 1)")
    parser.add_argument("--temperature", type=positive_float, default=1.0, help="below 1: safer, above 1: wilder")
    parser.add_argument("--prime", metavar="MIDI", type=nonempty_text, help="a MIDI file whose opening is played first (--prime-steps of it)")
    parser.add_argument("--prime-steps", type=positive_int, help=f"steps of the --prime file to use (default {PRIME_STEPS})")
    hidden_alias(parser, "--primer", "prime")  # the former names; --prime as in rnnkit sample
    hidden_alias(parser, "--primer-steps", "prime_steps", type=positive_int)
    parser.add_argument("--step-seconds", type=step_seconds, default=None,
                        help="seconds per time step in the MIDI file and of --prime (default: the run's, as it read MIDI in training; 0.5, 120 bpm quarters, for JSON pieces)")
    parser.add_argument("--program", type=midi_program, default=0, help="General MIDI instrument, 0-127 (default 0: piano)")
    add_plot(parser, "the piano roll (with --num N: one per piece, numbered as --out)", old="--png")
    parser.add_argument("--wav", type=wav_file, help="also render audio here (fluidsynth when installed, otherwise sine waves)")
    parser.add_argument("--seed", type=seed, help="random seed")


def run(args) -> int:
    from ..data.music import read_midi, write_midi
    from ..plots import plot_piano_roll

    written = [(option, Path(value).resolve()) for option, value in (("--out", args.out), ("--wav", args.wav), ("--plot", args.plot)) if value]
    for i, (option, path) in enumerate(written):  # --out w.wav --wav w.wav: the audio was written over the MIDI
        for other, same in written[i + 1 :]:
            if path == same:
                raise UsageError(f"{option} and {other} name the same file ({path}); each is written, the later over the earlier: give two names")
    if args.prime_steps is not None and not args.prime:  # nothing to take the steps from
        raise UsageError("--prime-steps is how much of the --prime file to play; give --prime MIDI, or leave --prime-steps out")
    prime_steps = PRIME_STEPS if args.prime_steps is None else args.prime_steps
    task, model, _, device = open_verb_run(args)
    if args.until_end and task.data.representation != "events":  # a piano roll has no end token: it would be ignored
        raise UsageError(f"--until-end stops where a voice-token model ends the piece; {args.run} is a piano-roll model, "
                         "whose pieces run for --length steps: leave it out")  # fmt: skip
    if args.step_seconds is None:  # the step the run's MIDI was read at: a prime read at another plays at another speed
        args.step_seconds = task.data.step_seconds
    primer = None
    if args.prime:
        steps = read_midi(args.prime, args.step_seconds)
        if len(steps) < prime_steps:
            warn("compose", f"{args.prime} has {len(steps)} steps of {args.step_seconds:g} s, fewer than --prime-steps {prime_steps}: all {len(steps)} are played")
        primer = steps[:prime_steps]
        if len(primer) >= args.length:  # nothing would be composed after it
            raise UsageError(f"the prime's {len(primer)} steps fill the whole piece of --length {args.length}; give a larger --length (or fewer --prime-steps)")
    pieces = task.compose(model, args.length, num=args.num, temperature=args.temperature, primer=primer, seed=args.seed, device=device, until_end=args.until_end)
    def numbered(value: str, i: int, default_suffix: str) -> Path:  # piece i's file: --out k.mid gives k-1.mid, k-2.mid...
        path = Path(value)
        return path.with_name(f"{path.stem}{f'-{i}' if args.num > 1 else ''}{path.suffix or default_suffix}")

    files = [{option: numbered(value, i, suffix) for option, value, suffix in (("--out", args.out, ".mid"), ("--plot", args.plot, ".png"),
                                                                            ("--wav", args.wav, ".wav")) if value}
             for i in range(1, len(pieces) + 1)]  # fmt: skip
    for paths in files:  # every piece's files checked before the first is written: an error half-way left pieces behind
        for option, path in paths.items():
            if path.is_dir():
                raise UsageError(f"{option}: {path} is a directory; give a file name")
    # every file drawn aside first, then the whole set put in place at once (as an export's files): an
    # interrupt left the pieces said to be written deleted, or new pieces beside old ones
    from ..files import atomic_write_all, drawn_aside

    contents, said = {}, []
    for path in {path.parent for paths in files for path in paths.values()}:
        path.mkdir(parents=True, exist_ok=True)
    for piece, paths in zip(pieces, files):
        out = paths["--out"]
        midi = drawn_aside(lambda path: write_midi(piece, path, step_seconds=args.step_seconds, program=args.program), out)
        said.append(f"{out}: {len(piece)} steps, {sum(len(step) for step in piece)} note-steps")
        if args.plot:
            contents[paths["--plot"]] = drawn_aside(lambda path: plot_piano_roll(piece, path, f"{out.name}: {len(piece)} steps"), paths["--plot"])
        if args.wav:
            def audio(path: Path) -> None:  # from the piece's MIDI, as it is written
                played = path.with_suffix(".mid")
                played.write_bytes(midi)
                said.append(render_wav(played, path, seconds=len(piece) * args.step_seconds, shown=paths["--wav"]))

            contents[paths["--wav"]] = drawn_aside(audio, paths["--wav"])
        contents[out] = midi
    contents = {path: data for path, data in contents.items() if data is not None}  # no picture without matplotlib
    atomic_write_all(contents)
    for line in said:
        print(line)
    return 0


def render_wav(midi_path: Path, wav_path: Path, rate: int = 22050, seconds: float = 0.0, shown: Path | None = None) -> str:
    """Audio of a MIDI file: fluidsynth with a General MIDI sound font when installed, else pretty_midi's
    sine waves; at least ``seconds`` long (the piece's steps: a piece without a note is that much silence)."""
    import wave

    import numpy as np
    import pretty_midi

    from ..files import atomic_write

    midi = pretty_midi.PrettyMIDI(str(midi_path))
    try:
        audio, how = midi.fluidsynth(fs=rate), "fluidsynth"
    except Exception:  # noqa: BLE001 (no pyfluidsynth or no sound font: fall back)
        audio, how = midi.synthesize(fs=rate), "sine waves (install pyfluidsynth and a sound font for instruments)"
    audio = np.concatenate([audio, np.zeros(max(0, round(seconds * rate) - len(audio)))])  # pretty_midi gives no samples for no notes
    audio = np.int16(np.clip(audio / max(1e-9, float(np.abs(audio).max(initial=0.0))), -1, 1) * 32000)

    def write(path: Path) -> None:
        with wave.open(str(path), "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(rate)
            f.writeframes(audio.tobytes())

    atomic_write(wav_path, write)  # as the .mid and .png: the old file or the whole new one, never a cut one
    return f"{shown or wav_path}: {len(audio) / rate:.1f} s of audio ({how})"
