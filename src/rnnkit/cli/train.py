"""``rnnkit train TASK ...``: train a model; parsing and wiring only (the work is in rnnkit.runs).

Nothing here names a task or a setting: the tasks come from the registry ``rnnkit.tasks.TASKS``,
and each task's options are generated from its declaration (``rnnkit.settings``, read without
importing torch, so that ``rnnkit train KIND --help`` answers at once): its ``Data``
dataclass's fields, its model settings (``model_defaults`` with ``MODEL_SETTINGS``'s help) and
``TrainingConfig``'s fields, each with its help, type, choices and default. A new setting is one
field; a new task is one registered task class.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import UsageError
from ._options import add_settings, nonempty_text

CONFIG_FILES = """
Every option can also come from --config FILE (TOML or JSON, the same names with underscores);
the command line wins."""


def add_parser(subparsers) -> None:
    from ..tasks import TASKS

    parser = subparsers.add_parser(
        "train",
        help=f"train a model: {', '.join(TASKS)} (see: rnnkit train TASK --help)",
        description="Train a model for one of the tasks into a run directory (checkpoints, metrics, the best weights).",
    )
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    for kind in TASKS:
        add_task_parser(tasks, TASKS.spec(kind))  # the declarations: no task module (nor torch) imported
    parser.set_defaults(verb="train")


def add_task_parser(tasks, task) -> argparse.ArgumentParser:
    """``rnnkit train KIND``'s parser, generated from the task's declaration ``task`` (a
    ``rnnkit.tasks.spec.TaskSpec``: the task class, or what it inherits its settings from)."""
    from dataclasses import fields

    from ..settings import settings_of
    from ..training import TrainingConfig

    parser = tasks.add_parser(
        task.kind, help=task.summary, description=task.description, epilog=task.examples + CONFIG_FILES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    data_fields = {field.name: field for field in fields(task.Data)}
    if "train" in data_fields:  # the training files, as positional DATA
        help = data_fields["train"].metadata.get("help", "training file(s)")
        parser.add_argument("train", nargs="*", metavar="DATA", type=nonempty_text, help=help)
    run = parser.add_argument_group("run")
    run.add_argument("--run", type=nonempty_text, help="run directory (default: runs/<data>-<model>..., numbered if taken)")
    run.add_argument("--resume", action="store_true", help="continue the run in --run from its last checkpoint")
    run.add_argument("--config", type=nonempty_text, help="TOML or JSON file of settings (command line wins)")
    add_settings(parser.add_argument_group("data"), settings_of(task.Data), skip={"train"})
    add_settings(parser.add_argument_group("model"), task.model_settings())
    add_settings(parser.add_argument_group("training"), settings_of(TrainingConfig))
    parser.set_defaults(_options=parser)  # for checking --config values like the options
    return parser


NOT_SETTINGS = {"verb", "task", "run", "resume", "config", "_options"}


def check_config_values(parser: argparse.ArgumentParser, values: dict, source: str) -> None:
    """Each value from a config file through its command-line option, so that a file's
    ``batch_size = 0``, ``dropout = nan``, ``lowercase = "false"`` or ``cell = 3`` gets the one-line
    error the command line gives; values are replaced by what the option's type makes of them
    (``hidden_size = "12"`` is 12, as ``--hidden-size 12``)."""
    actions = {action.dest: action for action in parser._actions if action.dest != "help"}
    flags = {flag: action for action in actions.values() for flag in action.option_strings}
    _flatten_cell_options(values, source)
    for key, value in values.items():
        action = actions.get(key)
        off = flags.get("--" + key.replace("_", "-"))
        if action is None and off is not None and off.nargs == 0 and off.const is False:  # no_crf = true: a switch's off flag, not a setting
            raise UsageError(f"{source}: {key!r} is the command line's --{key.replace('_', '-')}; a file sets the switch itself: "
                             f"{off.dest} = {'false' if value is True else 'true'}")  # fmt: skip
        if action is None:
            continue
        try:
            if action.nargs == 0 or isinstance(action, argparse.BooleanOptionalAction):  # a switch: true or false, nothing else
                if not isinstance(value, bool):
                    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")
                continue
            if isinstance(action.nargs, int) and not (isinstance(value, list) and len(value) == action.nargs):  # split: [VALID, TEST]
                names = f" [{', '.join(action.metavar)}]" if action.metavar is not None and not isinstance(action.metavar, str) else ""  # (VALID, TEST)
                raise argparse.ArgumentTypeError(f"expected a list of {action.nargs} values{names}, got {value!r}")
            several = isinstance(value, list) and action.nargs not in (None, "?")
            items = [_config_item(action, item) for item in (value if several else [value])]
            values[key] = items if several else items[0]
        except argparse.ArgumentTypeError as error:
            raise UsageError(f"{source}: {key}: {error}") from None


def _flatten_cell_options(values: dict, source: str) -> None:
    """A config's ``cell_options`` table (as a run's config.json records it) as top-level settings, so
    each is checked as its option is: ``{"peepholes": "false"}`` inside it once turned peepholes on."""
    from ..tasks.spec import CELL_OPTION_KEYS

    if "cell_options" not in values:
        return
    options = values.pop("cell_options")
    if not isinstance(options, dict):
        raise UsageError(f"{source}: cell_options: expected a table of cell settings ({', '.join(CELL_OPTION_KEYS)}), got {options!r:.40}")
    for key, value in options.items():
        if key not in CELL_OPTION_KEYS:
            raise UsageError(f"{source}: cell_options: {key!r} is no cell setting (they are: {', '.join(CELL_OPTION_KEYS)})")
        if key in values and values[key] != value:
            raise UsageError(f"{source}: {key} is given twice, at the top level and in cell_options, differently; keep one")
        values[key] = value


def _config_item(action: argparse.Action, item):
    """One config-file value as ``action`` reads it from the command line, or ArgumentTypeError."""
    if callable(action.type) and action.type is not nonempty_text:
        from ..settings import list_of_ints

        if action.type is list_of_ints and isinstance(item, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in item):
            item = ",".join(map(str, item))  # a list option written as a TOML/JSON array (head_sizes); [8] for hidden_size is no number
        if isinstance(item, bool) or not isinstance(item, (int, float, str)):
            raise argparse.ArgumentTypeError(f"expected a number, got {item!r}")
        try:
            item = action.type(str(item))
        except (TypeError, ValueError) as error:  # a plain type (int): argparse's "invalid int value", as the command line says
            raise argparse.ArgumentTypeError(f"invalid {getattr(action.type, '__name__', 'value')} value: {item!r}") from error
    elif not isinstance(item, str):  # text: a path, a name
        raise argparse.ArgumentTypeError(f"expected a string, got {item!r}")
    else:
        item = nonempty_text(item)
    if action.choices is not None and item not in action.choices:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(map(str, action.choices))}, got {item!r}")
    return item


def run(args) -> int:
    from ..runs import read_config_file, resume, split_config, start
    from ..tasks import TASKS

    given = {k: v for k, v in vars(args).items() if k not in NOT_SETTINGS and v is not None and v != []}
    if args.resume:
        if not args.run:
            raise UsageError("--resume needs --run DIR")
        if args.config:  # read as without --resume: the file's settings are given, the command line's over them
            values = read_config_file(args.config)
            split_config(args.task, values, str(args.config))  # an unknown key is named as such, not as one that "cannot change"
            if getattr(args, "_options", None) is not None:
                check_config_values(args._options, values, args.config)
            given = {**values, **given}
        data = sorted(key for key in given if key in TASKS.spec(args.task).data_keys())
        recorded = _recorded_data(args.run)  # the first command again with --resume added: its data settings change nothing
        changed = [key for key in data if not _same_setting(given[key], recorded.get(key))]
        if changed and recorded:  # none recorded (no run there, or none readable): resume says what is wrong, not "give no data settings"
            raise UsageError(f"--resume reads the data recorded in the run; give no data settings (given: {', '.join(changed)})")
        _, summary = resume(args.run, {k: v for k, v in given.items() if k not in data}, task_kind=args.task)
    else:
        values = read_config_file(args.config) if args.config else {}
        if values and getattr(args, "_options", None) is not None:
            check_config_values(args._options, values, args.config)
        from_file = [key for key in values if key not in given]
        values.update(given)  # the task's data check says what is missing (no training files ...)
        try:
            _, summary = start(args.task, values, args.run, source=str(args.config or "the configuration"))  # unknown keys come from the file
        except UsageError as error:
            raise _named_with_its_file(error, args.config, from_file, list(given)) from None
    from ..distributed import setup

    if setup().main:  # under torchrun every process trains to the same summary: said once
        _print_summary(summary)
    return 0


def _named_with_its_file(error: UsageError, config, from_file: list[str], typed: list[str]) -> UsageError:
    """``error`` with the config file named first when it is about settings only that file gave
    ("--bptt is the chunk length of --batching stream", "cell 'gru' has no option 'peepholes'"): the
    user typed no such option, and the message named no file. One that names an option typed on
    the command line keeps it first (the file's settings it also names are said to come from the
    file: "--init-from RUN: ... this one reads --level word ... (--level from c.toml)"), unless it is
    about one of the file's settings first (the file's ``split`` refused because ``--valid`` was typed)."""
    text = str(error)

    def named(key: str) -> bool:
        return f"--{key.replace('_', '-')}" in text or f"'{key}'" in text

    if config is None or text.startswith(str(config)):
        return error
    if any(text.startswith(f"--{key.replace('_', '-')} ") for key in from_file):  # about a setting of the file's ("--split ... --valid ...")
        return UsageError(f"{config}: {text}")
    if any(named(key) for key in typed):  # the file's settings it names too are said to be the file's
        theirs = [f"--{key.replace('_', '-')}" for key in from_file if named(key)]
        return UsageError(f"{text} ({', '.join(theirs)} from {config})") if theirs else error
    return UsageError(f"{config}: {text}") if any(named(key) for key in from_file) else error


def _same_setting(given, recorded) -> bool:
    """Whether a data setting given again equals the run's: the same value, or the same files
    however written (``./a.txt`` for ``a.txt``; a path config.json recorded resolved)."""
    if json.loads(json.dumps(given)) == recorded:
        return True
    from ..data.textio import file_identity

    def as_list(value):  # one path, several, or several joined by commas (--lm-features FWD,BWD)
        if isinstance(value, str):
            return value.split(",") if "," in value and not Path(value).exists() else [value]
        return value

    given, recorded = as_list(given), as_list(recorded)
    if not (isinstance(given, list) and isinstance(recorded, list) and len(given) == len(recorded)):
        return False
    if not all(isinstance(v, str) for v in [*given, *recorded]):
        return False
    return all(a == b or (Path(a).exists() and file_identity(a) == file_identity(b)) for a, b in zip(given, recorded))


def _recorded_data(run: str) -> dict:
    """The data settings config.json records for ``run`` ({} when it cannot be read: resume says why)."""
    try:
        config = json.loads((Path(run) / "config.json").read_text(encoding="utf-8"))
        return config["data"] if isinstance(config, dict) and isinstance(config.get("data"), dict) else {}
    except (OSError, ValueError):
        return {}


def _print_summary(summary: dict) -> None:
    """The scalar entries of summary.json on one line, shares (``test_accuracy`` ...) as percentages:
    the file keeps the fractions."""
    from ..metrics import SHARES, percent

    def shown(key: str, value) -> str:
        if isinstance(value, float) and key.removeprefix("test_") in SHARES:
            return percent(value)
        return str(round(value, 4) if isinstance(value, float) else value)

    # a sentence as the value says itself ("stopped at step 6 ..."), not "stopped stopped at step 6"
    print("summary: " + ", ".join(shown(k, v) if isinstance(v, str) and v.startswith(k) else f"{k} {shown(k, v)}"
                                  for k, v in summary.items() if isinstance(v, (int, float, str))))  # fmt: skip
