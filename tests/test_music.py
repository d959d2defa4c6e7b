"""Music: piano roll <-> MIDI, the Bernoulli NLL, overfitting one chorale, composing from the command
line, and one-line errors for malformed input."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from equality import rounding_tolerance
from rnnkit.cli import main
from rnnkit.data.music import from_voice_tokens, piano_roll, read_chorales, roll_to_sequence, to_voice_tokens
from rnnkit.data.text import DataError
from rnnkit.errors import UsageError
from rnnkit.models.losses import bernoulli_nll
from rnnkit.models.music import PianoRollModel

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
SONG = [[60, 64, 67], [60, 64, 67], [], [62, 65], [62], [62, 65, 69, 72], [], []]  # held chord, rests, a repeat


def test_piano_roll_midi_piano_roll_preserves_notes_and_timing(tmp_path):
    pytest.importorskip("pretty_midi")
    from rnnkit.data.music import read_midi, write_midi

    assert roll_to_sequence(piano_roll(SONG)) == SONG
    for step_seconds in (0.5, 0.25):
        write_midi(SONG[:-2], tmp_path / "a.mid", step_seconds=step_seconds)  # trailing silence has no notes to keep
        assert read_midi(tmp_path / "a.mid", step_seconds) == SONG[:-2]


def test_voice_tokens_round_trip():
    tokens = to_voice_tokens(SONG, voices=4)
    assert tokens[:8] == ["p67", "p64", "p60", "rest", "p67", "p64", "p60", "rest"]
    assert from_voice_tokens(tokens, voices=4) == SONG


def test_notes_beyond_the_voices_are_counted_and_said_when_a_run_is_prepared(tmp_path, capsys):
    """--voices V keeps each step's V highest notes; the lower notes of bigger chords are left out of
    the events, and preparing a run says how many (all splits), not silently."""
    from rnnkit.data.music import notes_beyond_voices
    from rnnkit.tasks.music import MusicDataConfig, MusicTask

    assert notes_beyond_voices([SONG], 4) == (13, 0, 0) and notes_beyond_voices([SONG], 2) == (13, 4, 3)
    path = chorales_file(tmp_path, [SONG, SONG])  # train: 2 songs, valid and test: 1 each
    MusicTask.prepare(MusicDataConfig(train=[path], representation="events", voices=2))
    assert "16 of 52 note-steps (a note held k steps counts k times), in 12 steps with more than --voices 2 notes, are left out of the events" in capsys.readouterr().err
    MusicTask.prepare(MusicDataConfig(train=[path], representation="events", voices=4))
    assert "left out" not in capsys.readouterr().err


def test_bernoulli_nll_equals_a_hand_computation():
    logits = torch.tensor([[[2.0, -1.0] + [0.0] * 86]])  # (T=1, B=1, 88)
    roll = torch.zeros(1, 1, 88)
    roll[0, 0, 0] = 1.0  # key 0 sounds, every other key is silent
    total, steps = bernoulli_nll(logits, roll)
    sigmoid = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    by_hand = -math.log(sigmoid(2.0)) - math.log(1 - sigmoid(-1.0)) - 86 * math.log(0.5)
    assert steps == 1 and abs(float(total) - by_hand) <= rounding_tolerance(total, reduction=88)  # float32 sum of 88 notes
    padded = torch.cat([roll, torch.ones(1, 1, 88)])  # a padded second step must not count
    total2, steps2 = bernoulli_nll(torch.cat([logits, torch.zeros(1, 1, 88)]), padded, torch.tensor([1]))
    assert steps2 == 1 and abs(float(total2) - by_hand) <= rounding_tolerance(total2, reduction=88)


def chorales_file(tmp_path: Path, sequences, name="songs.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps({"train": sequences, "valid": sequences[:1], "test": sequences[:1]}))
    return str(path)


def test_model_overfits_one_chorale(tmp_path):
    from rnnkit.tasks.music import MusicDataConfig, MusicTask
    from rnnkit.training import RunDir, Trainer, TrainingConfig

    chorale = [[60 + (t % 5), 67 + (t % 3), 72] if t % 4 else [55, 62] for t in range(32)]
    task, _ = MusicTask.prepare(MusicDataConfig(train=[chorales_file(tmp_path, [chorale])], batch_size=1))
    torch.manual_seed(0)
    model = PianoRollModel(cell="gru", hidden_size=96, dropout=0.0)
    start = task.evaluate(model, "valid", "cpu")["nll_per_step"]
    summary = Trainer(task, model, TrainingConfig(max_steps=600, lr=1e-2, schedule="constant", progress=False, eval_every=600), RunDir(tmp_path / "run")).fit()
    assert start > 50  # about 88 ln 2 at the start
    assert summary["best_valid_criterion"] < 1.5  # nats per step, from over 50: the chorale is learned


def test_input_dropout_is_set_apart_from_dropout():
    torch.manual_seed(0)
    rolls = (torch.rand(20, 3, 88) < 0.1).float()
    seen = []
    for input_dropout in (0.0, None):
        model = PianoRollModel(cell="gru", hidden_size=8, dropout=0.5, input_dropout=input_dropout).train()
        model.recurrent.register_forward_pre_hook(lambda module, args, kwargs: seen.append(args[0].clone()), with_kwargs=True)
        model(rolls)
    fed_back = torch.cat([torch.zeros_like(rolls[:1]), rolls[:-1]])  # x<t> = v<t-1>
    assert torch.equal(seen[0], fed_back)  # input_dropout 0: the notes as played
    assert not torch.equal(seen[1], fed_back) and set(seen[1].unique().tolist()) <= {0.0, 2.0}  # default: dropout 0.5
    assert PianoRollModel(dropout=0.3).config()["input_dropout"] == 0.3


@pytest.mark.parametrize("representation", ["piano-roll", "events"])
def test_train_compose_eval_from_the_command_line(tmp_path, capsys, representation):
    pytest.importorskip("pretty_midi")
    import mido
    import pretty_midi

    songs = [[[60 + (t + k) % 7, 67, 72 - (k % 2)] for t in range(24)] for k in range(6)]
    data = chorales_file(tmp_path, songs)
    run = tmp_path / "run"
    extra = ["--input-dropout", "0.1"] if representation == "piano-roll" else []
    code = main(["train", "music", data, "--representation", representation, "--run", str(run), "--epochs", "3", "--hidden-size", "32", "--no-progress", *extra])
    _, err = capsys.readouterr()
    assert code == 0, err and "NLL" in err
    if extra:
        assert json.loads((run / "config.json").read_text())["model"]["input_dropout"] == 0.1
    out = tmp_path / "song.mid"
    code = main(["compose", str(run), "--steps", "40", "--out", str(out), "--seed", "1", "--png", str(tmp_path / "song.png"), "--wav", str(tmp_path / "song.wav")])
    printed, err = capsys.readouterr()
    assert code == 0, err
    assert (tmp_path / "song.png").exists() and (tmp_path / "song.wav").exists()
    midi = pretty_midi.PrettyMIDI(str(out))
    roll = midi.get_piano_roll(fs=2.0)  # 0.5 s per step
    assert roll.shape[1] <= 40 and roll.sum() > 0
    assert "40 steps" in printed
    assert abs(mido.MidiFile(str(out)).length - 20.0) < 0.01  # 40 steps of 0.5 s, as asked
    code = main(["eval", str(run), data, "--json"])
    result = json.loads(capsys.readouterr()[0])
    assert code == 0 and result["nll_per_step"] > 0
    # --num N: a numbered file that cannot be written refuses the call before any piece is written
    (tmp_path / "k-2.png").mkdir()
    code = main(["compose", str(run), "--steps", "4", "--num", "2", "--out", str(tmp_path / "k.mid"), "--plot", str(tmp_path / "k.png")])
    assert code == 2 and "k-2.png is a directory" in capsys.readouterr().err
    assert not list(tmp_path.glob("k-1.*")) and not (tmp_path / "k-2.mid").exists()
    # an interrupt while the pieces are drawn: nothing said written, the earlier set untouched (it deleted the
    # pieces it had said written, or left new pieces beside old ones)
    (tmp_path / "k-2.png").rmdir()
    assert main(["compose", str(run), "--steps", "4", "--num", "2", "--out", str(tmp_path / "k.mid"), "--plot", str(tmp_path / "k.png")]) == 0
    capsys.readouterr()
    before = {path.name: path.read_bytes() for path in tmp_path.glob("k-*")}
    assert sorted(before) == ["k-1.mid", "k-1.png", "k-2.mid", "k-2.png"]
    from rnnkit import plots

    drawn = []

    def interrupted(*args, **kwargs):
        drawn.append(1)
        if len(drawn) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    real = plots.plot_piano_roll
    plots.plot_piano_roll = interrupted
    try:
        assert main(["compose", str(run), "--steps", "4", "--num", "2", "--seed", "7", "--out", str(tmp_path / "k.mid"), "--plot", str(tmp_path / "k.png")]) == 130
    finally:
        plots.plot_piano_roll = real
    assert "k-1.mid" not in capsys.readouterr().out
    assert {path.name: path.read_bytes() for path in tmp_path.glob("k-*")} == before
    # a prime the composer would not use is refused; a shorter one than --prime-steps is said
    with pytest.raises(SystemExit):  # a prime of no steps: refused where the option is read
        main(["compose", str(run), "--steps", "4", "--out", str(out), "--prime", str(out), "--prime-steps", "0"])
    assert "must be a whole number >= 1, got '0'" in capsys.readouterr().err
    assert main(["compose", str(run), "--steps", "4", "--out", str(out), "--prime-steps", "4"]) == 2  # steps of no prime
    assert "--prime-steps is how much of the --prime file to play" in capsys.readouterr().err
    assert main(["compose", str(run), "--steps", "60", "--out", str(tmp_path / "primed.mid"), "--prime", str(out), "--prime-steps", "1000"]) == 0
    assert "fewer than --prime-steps 1000: all" in capsys.readouterr().err
    assert main(["compose", str(run), "--steps", "4", "--out", str(tmp_path / "primed.mid"), "--prime", str(out)]) == 2
    assert "the prime's 8 steps fill the whole piece of --length 4" in capsys.readouterr().err


def test_malformed_input_gets_one_line(tmp_path, capsys):
    (tmp_path / "bad.json").write_text('{"train": [[[60, 64]], [[61]]\n, }')
    with pytest.raises(DataError, match=r"bad.json:2: not valid JSON"):
        read_chorales(tmp_path / "bad.json")
    (tmp_path / "range.json").write_text(json.dumps({"train": [[[60], [140]]]}))
    with pytest.raises(DataError, match=r"range.json \[train\]: sequence 0, step 1: pitch 140 outside the piano range"):
        read_chorales(tmp_path / "range.json")
    code = main(["train", "music", str(tmp_path / "range.json"), "--run", str(tmp_path / "r")])
    err = capsys.readouterr()[1]
    assert code == 2 and len(err.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


@pytest.mark.skipif(not (SHARED / "jsb_chorales" / "jsb-chorales-quarter.json").exists(), reason="shared JSB data absent")
def test_reads_the_real_jsb_chorales():
    data = read_chorales(SHARED / "jsb_chorales" / "jsb-chorales-quarter.json")
    assert {k: len(v) for k, v in data.items()} == {"train": 229, "valid": 76, "test": 77}
    assert {k: sum(map(len, v)) for k, v in data.items()} == {"train": 13807, "valid": 4602, "test": 4725}
    assert read_chorales(SHARED / "jsb_chorales" / "jsb-chorales-quarter.pkl") == data


@pytest.mark.parametrize("representation", ["piano-roll", "events"])
def test_a_tiny_temperature_composes_instead_of_failing(tmp_path, representation):
    """1e-300 is a valid temperature that float32 holds as 0: σ(0 / 0) would be NaN. Composing at
    it is composing at the coldest temperature the sampler divides by (decoding.sampling.COLDEST)."""
    from rnnkit.models import build_model
    from rnnkit.tasks.music import MusicDataConfig, MusicTask

    task, _ = MusicTask.prepare(MusicDataConfig(train=[chorales_file(tmp_path, [SONG, SONG])], representation=representation))
    torch.manual_seed(0)
    model = build_model(task.model_kind, task.model_config({"hidden_size": 8}))
    pieces = task.compose(model, 6, num=2, temperature=1e-300, seed=0)
    assert len(pieces) == 2 and all(len(piece) <= 6 for piece in pieces)


def test_a_wav_render_that_fails_midway_leaves_the_old_file_whole(tmp_path, monkeypatch):
    """compose --wav writes as the .mid and .png do: a kill or a full disk in the middle of the
    frames leaves the earlier file as it was (not a cut file whose header claims its full length)."""
    pytest.importorskip("pretty_midi")
    import wave

    from rnnkit.cli.compose import render_wav
    from rnnkit.data.music import write_midi

    write_midi(SONG[:-2], tmp_path / "a.mid")
    wav = tmp_path / "a.wav"
    render_wav(tmp_path / "a.mid", wav)
    before = wav.read_bytes()

    def full_disk(self, data):
        self._file.write(data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(wave.Wave_write, "writeframes", full_disk)
    with pytest.raises(OSError):
        render_wav(tmp_path / "a.mid", wav)
    assert wav.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["a.mid", "a.wav"]


def test_midi_folders_are_read_at_the_runs_step_and_files_with_splits_give_the_split_asked_for(tmp_path):
    """``--step-seconds`` was recorded but MIDI was always read at 0.5 s a step (training and eval);
    a JSB JSON given as ``--valid`` / ``--test`` gave its *train* split, and ``eval`` on a file with
    only train and valid splits scored the train split, without a word."""
    pytest.importorskip("pretty_midi")
    from rnnkit.data.music import write_midi
    from rnnkit.tasks.music import MusicTask

    folder = tmp_path / "midi"
    folder.mkdir()
    for i in range(4):
        write_midi(SONG[:-2], folder / f"s{i}.mid", step_seconds=0.5)  # 6 steps of 0.5 s each
    for step_seconds, steps in ((0.5, 6), (0.25, 12)):
        data = MusicTask.data_config({"train": str(folder), "split": (0.25, 0.25), "step_seconds": step_seconds})
        task, record = MusicTask.prepare(data)
        assert sum(record["steps"].values()) == 4 * steps
        assert [len(s) for s in MusicTask.read_file(data, str(folder))] == [steps] * 4  # eval reads as training did
    jsb = tmp_path / "jsb.json"
    jsb.write_text(json.dumps({"train": [SONG] * 3, "valid": [SONG[:3]], "test": [SONG[:5]] * 2}))
    data = MusicTask.data_config({"train": chorales_file(tmp_path, [SONG] * 2), "valid": str(jsb), "test": str(jsb)})
    task, record = MusicTask.prepare(data)
    assert record["sequences"] == {"train": 2, "valid": 1, "test": 2} and record["steps"]["valid"] == 3
    only = tmp_path / "train-valid.json"
    only.write_text(json.dumps({"train": [SONG], "valid": [SONG]}))
    with pytest.raises(UsageError, match="no 'test' split"):
        MusicTask.read_file(data, str(only))


def test_a_pitch_bend_is_no_second_note(tmp_path):
    """pretty_midi's piano roll sounds a bent note on two keys: every bent note became a chord."""
    pretty_midi = pytest.importorskip("pretty_midi")
    from rnnkit.data.music import read_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(0)
    instrument.notes = [pretty_midi.Note(80, 60, 0.0, 4.0)]
    instrument.pitch_bends = [pretty_midi.PitchBend(4000, 2.0), pretty_midi.PitchBend(-6000, 3.0)]
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "bend.mid"))
    assert read_midi(tmp_path / "bend.mid") == [[60]] * 8


def test_compose_writes_and_primes_at_the_runs_step(tmp_path):
    """A run trained on MIDI at --step-seconds 0.25 composed at 0.5 s a step: half its speed, and its
    prime read at 0.5 s lost every other note."""
    pretty_midi = pytest.importorskip("pretty_midi")
    from rnnkit.data.music import write_midi

    folder = tmp_path / "midi"
    folder.mkdir()
    for i in range(4):
        write_midi(SONG[:-2] * 3, folder / f"s{i}.mid", step_seconds=0.25)
    run = tmp_path / "run"
    assert main(["train", "music", str(folder), "--step-seconds", "0.25", "--split", "0.25", "0.25", "--hidden-size", "8", "--max-steps", "2", "--no-progress", "--run", str(run)]) == 0
    out = tmp_path / "c.mid"
    assert main(["compose", str(run), "--length", "20", "--prime", str(folder / "s0.mid"), "--prime-steps", "6", "--out", str(out), "--seed", "0"]) == 0
    assert pretty_midi.PrettyMIDI(str(out)).get_end_time() == pytest.approx(20 * 0.25, abs=0.26)


def test_music_files_are_told_apart_by_their_suffix_in_any_case_and_a_json_key_given_twice_is_refused(tmp_path):
    """``q.PKL`` and ``q.pickle`` were read as text ("not UTF-8 text (byte 0x80)"), an ``.npz`` was
    told to be unzipped, and ``{"train": [...], "train": [...]}`` kept the last list unsaid."""
    import pickle

    from rnnkit.data.music import read_chorales
    from rnnkit.data.textio import DataError

    songs = [[[60, 64], [62]], [[65], [67, 71]]]
    for name in ("q.PKL", "q.pickle", "q.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps({"train": songs}))
        assert read_chorales(tmp_path / name)["train"] == songs, name
    (tmp_path / "sep.npz").write_bytes(b"PK\x03\x04rest")
    with pytest.raises(DataError, match=r"sep.npz: a numpy file; music is read from JSON, a .pkl pickle or a folder of MIDI files"):
        read_chorales(tmp_path / "sep.npz")
    (tmp_path / "dup.json").write_text('{"train": [[[60]], [[62]]], "valid": [[[64]]], "train": [[[65]]]}')
    with pytest.raises(DataError, match=r"dup.json: not readable JSON: the key 'train' is given twice"):
        read_chorales(tmp_path / "dup.json")


def test_what_an_events_run_cannot_read_is_said_by_eval_and_refused_in_a_prime(tmp_path, capsys):
    """eval scored pitches the run never learned as <UNK> and dropped notes beyond its voices without
    a word; compose --prime played such a prime as silence."""
    songs = [[[60 + (t + k) % 5] for t in range(10)] for k in range(3)]
    (tmp_path / "songs.json").write_text(json.dumps({"train": songs, "valid": songs[:1], "test": songs[:1]}))
    other = [[[40, 60, 66]] * 4]  # with 2 voices: p66 and p60 are read, p40 is beyond them
    (tmp_path / "other.json").write_text(json.dumps(other))
    run = tmp_path / "run"
    assert main(["train", "music", str(tmp_path / "songs.json"), "--representation", "events", "--voices", "2", "--hidden-size", "4",
                 "--max-steps", "1", "--no-progress", "--run", str(run)]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), str(tmp_path / "other.json")]) == 0
    err = capsys.readouterr().err
    assert "4 of 12 note-steps are pitches the run never learned, p66 (it learned p60-p64), read as <UNK>" in err
    assert "4 note-steps beyond --voices 2 in their step are left out" in err
    pretty_midi = pytest.importorskip("pretty_midi")
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(0)
    piano.notes = [pretty_midi.Note(80, 40 + j, j * 0.5, j * 0.5 + 0.5) for j in range(4)]
    midi.instruments.append(piano)
    midi.write(str(tmp_path / "low.mid"))
    assert main(["compose", str(run), "--prime", str(tmp_path / "low.mid"), "--length", "8", "--out", str(tmp_path / "s.mid")]) == 2
    assert "the prime: 4 of 4 note-steps are pitches the run never learned" in capsys.readouterr().err and not (tmp_path / "s.mid").exists()


def test_every_training_files_own_splits_are_kept(tmp_path, capsys):
    """With two JSON files, the second one's valid and test pieces were silently dropped."""
    def songs(k):
        return [[[60 + (t + k) % 5] for t in range(6)] for _ in range(3)]
    for name, k in (("a.json", 0), ("b.json", 1)):
        (tmp_path / name).write_text(json.dumps({"train": songs(k), "valid": songs(k)[:2], "test": songs(k)[:1]}))
    from rnnkit.tasks.music import MusicTask

    data = MusicTask.data_config({"train": [str(tmp_path / "a.json"), str(tmp_path / "b.json")]})
    task, record = MusicTask.prepare(data)
    assert record["sequences"] == {"train": 6, "valid": 4, "test": 2}
    (tmp_path / "bare.json").write_text(json.dumps(songs(2)))
    with pytest.raises(Exception, match=r"a.json holds its own valid split, .*bare.json has none: give --valid"):
        MusicTask.prepare(MusicTask.data_config({"train": [str(tmp_path / "a.json"), str(tmp_path / "bare.json")]}))


@pytest.mark.parametrize("args, message", [
    (["--step-seconds", "17"], "must be a finite number >= 0.0001 and <= 16"), (["--step-seconds", "1e-9"], ">= 0.0001"),
    (["--wav", "{out}"], "give a name ending in .wav"), (["--wav", "x.mp3"], "give a name ending in .wav"),
    (["--wav", ".wav"], "give a name before .wav"), (["--plot", "sub/.png"], "give a name before .png"),
])
def test_compose_refuses_a_step_midi_cannot_hold_and_audio_under_another_name(tmp_path, capsys, args, message):
    """--step-seconds 17 was mido's traceback (a tempo over 2**24 - 1 us), 1e-9 a file of tempo 0
    that no reader opens; --wav song.mid overwrote the MIDI with WAV bytes."""
    out = str(tmp_path / "song.mid")
    with pytest.raises(SystemExit) as exit:
        main(["compose", str(tmp_path / "no-run"), "--out", out, *[out if a == "{out}" else a for a in args]])
    assert exit.value.code == 2 and message in capsys.readouterr().err


def test_a_step_too_long_for_midi_is_one_line_from_write_midi(tmp_path):
    pytest.importorskip("pretty_midi")
    from rnnkit.data.music import write_midi
    from rnnkit.errors import UsageError

    with pytest.raises(UsageError, match=r"a step of 20 s cannot be written as MIDI"):
        write_midi([[60]], tmp_path / "x.mid", step_seconds=20)
    assert not (tmp_path / "x.mid").exists()


def test_held_out_pitches_no_training_piece_has_are_said_when_an_events_run_is_prepared(tmp_path, capsys):
    from rnnkit.tasks.music import MusicTask

    songs = [[[60 + (t + k) % 5] for t in range(6)] for k in range(3)]
    (tmp_path / "songs.json").write_text(json.dumps({"train": songs, "valid": [[[30, 60]] * 4], "test": songs[:1]}))
    MusicTask.prepare(MusicTask.data_config({"train": [str(tmp_path / "songs.json")], "representation": "events", "voices": 2}))
    err = capsys.readouterr().err
    assert "the valid pieces: 4 of 8 note-steps are pitches the run never learned, p30" in err and "the test pieces" not in err


def test_compose_refuses_two_outputs_of_one_name(tmp_path, capsys):
    """--out w.wav --wav w.wav wrote the audio over the MIDI, and said both were written."""
    out = tmp_path / "w.wav"
    with pytest.raises(SystemExit) as exit:  # each output ends in its own format's suffix, so no two can be one file
        main(["compose", str(tmp_path / "no-run"), "--out", str(out), "--wav", str(tmp_path / "." / "w.wav")])
    assert exit.value.code == 2 and "music is written as MIDI" in capsys.readouterr().err and not out.exists()


def test_a_piece_without_a_note_renders_as_silence_not_a_traceback(tmp_path):
    """pretty_midi gives no samples for a MIDI file without notes: compose --wav of a silent piece
    ended in numpy's "zero-size array" traceback after writing the MIDI, and no later piece was written."""
    pytest.importorskip("pretty_midi")
    import wave

    from rnnkit.cli.compose import render_wav
    from rnnkit.data.music import write_midi

    write_midi([[]] * 8, tmp_path / "quiet.mid", step_seconds=0.25)
    render_wav(tmp_path / "quiet.mid", tmp_path / "quiet.wav", seconds=8 * 0.25)
    with wave.open(str(tmp_path / "quiet.wav")) as f:
        frames = f.readframes(f.getnframes())
        assert f.getnframes() == round(2.0 * f.getframerate()) and not any(frames)


def test_two_notes_of_one_pitch_overlapping_on_a_channel_sound_while_either_does(tmp_path):
    """pretty_midi ends every open note of a pitch at the first note-off: a unison of two voices on one
    staff (a half note against a quarter) lost the longer note's second half, silently."""
    pytest.importorskip("pretty_midi")
    from rnnkit.data.music import read_midi

    # type 0, 96 ticks a quarter at 120 bpm: C4 on twice at 0 s, off at 0.5 s and at 1 s
    data = b"MThd\x00\x00\x00\x06\x00\x00\x00\x01\x00\x60MTrk\x00\x00\x00\x14\x00\x90\x3c\x40\x00\x90\x3c\x40\x60\x80\x3c\x40\x60\x80\x3c\x40\x00\xff\x2f\x00"
    (tmp_path / "overlap.mid").write_bytes(data)
    assert read_midi(tmp_path / "overlap.mid", 0.5) == [[60], [60]]


def test_split_of_pieces_that_hold_their_splits_is_refused_not_recorded(tmp_path, monkeypatch):
    """--split 0.3 0.2 on a JSB file (which holds its splits), or with --valid and --test, split
    nothing and was recorded in config.json as if it had; the run's own resume (its recorded split)
    is no such request."""
    from rnnkit.runs import resume, start

    monkeypatch.chdir(tmp_path)
    pieces = [[[60 + i], [62], [64, 67]] * 3 for i in range(4)]
    (tmp_path / "jsb.json").write_text(json.dumps({"train": pieces, "valid": pieces[:1], "test": pieces[1:2]}))
    settings = {"hidden_size": 4, "epochs": 1, "progress": False}
    with pytest.raises(UsageError, match=r"^--split .*jsb.json holds its own valid and test splits"):
        start("music", {"train": ["jsb.json"], "split": [0.3, 0.2], **settings}, "run")
    assert not (tmp_path / "run").exists()
    (tmp_path / "bare.json").write_text(json.dumps(pieces))
    with pytest.raises(UsageError, match=r"^--split .*--valid/--test are given"):
        start("music", {"train": ["bare.json"], "valid": "jsb.json", "test": "jsb.json", "split": [0.3, 0.2], **settings}, "run")
    start("music", {"train": ["bare.json"], "split": [0.25, 0.25], **settings}, "bare")  # pieces without splits: --split splits them
    start("music", {"train": ["jsb.json"], **settings}, "run")
    resume("run", {"epochs": 2, "progress": False})


def test_a_transposition_that_mostly_leaves_the_piano_is_said_and_an_absurd_one_refused(capsys):
    """--transpose 100 was taken: every shift left the piano and every piece stayed unshifted,
    so the augmentation did nothing, unsaid."""
    import argparse

    from rnnkit.settings import semitone_shift
    from rnnkit.tasks.music import say_shifts_off_the_piano

    pieces = [[[60 + t % 7, 67] for t in range(16)] for _ in range(4)]  # 39 keys of room below, 41 above
    say_shifts_off_the_piano(pieces, 12)
    assert capsys.readouterr().err == ""
    say_shifts_off_the_piano(pieces, 60)  # 40 of the 121 shifts leave the piano
    assert "--transpose 60: 33% of the shifts drawn would take a training piece's notes off the piano" in capsys.readouterr().err
    with pytest.raises(argparse.ArgumentTypeError, match="<= 87"):
        semitone_shift("100")


def test_a_held_out_music_file_read_whole_that_is_a_training_file_is_said(tmp_path, capsys):
    """A JSON file of training pieces alone (a bare list, or a train split only) given again as --valid
    or --test was read whole, i.e. the training pieces, with no note; other tasks' files and MIDI
    folders say so. A file's own valid and test splits are no training pieces: nothing said."""
    from rnnkit.tasks.music import MusicTask

    only = tmp_path / "train-only.json"
    only.write_text(json.dumps({"train": [SONG] * 3}))
    MusicTask.prepare(MusicTask.data_config({"train": str(only), "valid": str(only), "test": str(only)}))
    err = capsys.readouterr().err
    assert f"--valid {only} is also a training file" in err and f"--test {only} is also a training file" in err
    whole = tmp_path / "jsb.json"
    whole.write_text(json.dumps({"train": [SONG] * 3, "valid": [SONG[:3]], "test": [SONG[:5]]}))
    MusicTask.prepare(MusicTask.data_config({"train": str(whole), "valid": str(whole), "test": str(whole)}))
    assert "also a training file" not in capsys.readouterr().err
