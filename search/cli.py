"""Command line: the only place that prints errors and chooses exit codes.

Every expected problem (bad flag, missing study, unusable file, missing data set)
becomes ``error: <one line>`` on stderr and exit code 2; Ctrl-C exits 130 after
recording the in-flight trials; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import optuna

from model.datasets import DatasetError
from search.coordinator.coordinator import Interrupted
from search.coordinator.job import Execution, run_job
from search.errors import SearchError
from search.outcome import format_outcome
from search.readers.export import FORMATS as EXPORT_FORMATS
from search.readers.results import REPORT_FORMATS
from search.settings import (
    DATA_DIR,
    EXECUTION,
    JOBS,
    RUN_SETTINGS,
    STORAGE,
    STUDY,
    STUDY_SETTINGS,
    Setting,
    int_at_least,
)
from search.study.outputs import check_output, study_files
from search.study.spec import StudySpec, build_spec, default_study_name, given_settings
from search.study.storage import default_url, open_storage
from search.study.stored import load_spec
from search.workers.final import weights_paths

logger = logging.getLogger("search")

EXIT_ERROR = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback-like noise
        raise SearchError(f"{message} (see 'python -m search {self.prog.split()[-1]} --help')")


def _argument_type(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A setting's check as argparse's type: its reason becomes argparse's one-line message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except SearchError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    convert.__name__ = parse.__name__  # argparse names the type in some messages
    return convert


def _help(s: Setting) -> str:
    return s.help.replace("%", "%%")  # argparse formats help with %


def _add(p: argparse.ArgumentParser | argparse._MutuallyExclusiveGroup, s: Setting, **extra: Any) -> None:
    if s.switch:
        action = "store_false" if s.negated else "store_true"
        p.add_argument(
            s.flag, dest=s.name, action=action, default=not s.negated if s.negated else None, help=_help(s), **extra
        )
        return
    typed = {"type": _argument_type(s.parse)} if s.parse is not None else {}
    p.add_argument(s.flag, dest=s.name, metavar=s.metavar, choices=s.choices, help=_help(s), **typed, **extra)


_positive_int = _argument_type(int_at_least(1))


def _add_study(p: argparse.ArgumentParser) -> None:
    """``--study`` of a command on an existing study: required, so no default to tell."""
    _add(p, dataclasses.replace(STUDY, help="study name"), required=True)


def _add_storage(p: argparse.ArgumentParser) -> None:
    _add(p, STORAGE)


def _add_execution(p: argparse.ArgumentParser) -> None:
    for s in EXECUTION:
        _add(p, s)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m search", description="Parallel Optuna hyperparameter search for NumPy networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="create a study or continue one, until it holds N finished trials")
    which = run.add_mutually_exclusive_group()
    for setting in RUN_SETTINGS:
        _add(which if setting.name in ("dataset", "data") else run, setting)
    _add_execution(run)

    resume = sub.add_parser("resume", help="continue a study with the settings stored on it")
    _add_study(resume)
    _add_storage(resume)
    _add_execution(resume)

    show = sub.add_parser("show", help="leaderboard of a study")
    _add_study(show)
    show.add_argument("--top", type=_positive_int, default=10, metavar="K", help="rows to show (default %(default)s)")
    show.add_argument("--csv", metavar="FILE", help="also write every trial to this CSV file")
    _add_storage(show)

    plot = sub.add_parser("plot", help="heatmaps, learning curves and history as PNG files")
    _add_study(plot)
    plot.add_argument("--out", metavar="DIR", help="output directory (default: beside the database)")
    _add_storage(plot)

    best = sub.add_parser("best", help="best parameters and scores; --retrain scores on the test split")
    _add_study(best)
    best.add_argument(
        "--retrain", action="store_true", help="retrain the best configuration on train+validation and score it on test"
    )
    best.add_argument(
        "--seeds",
        type=_positive_int,
        default=1,
        metavar="K",
        help="--retrain K networks with different seeds: test accuracy as mean ± sd, "
        "and of their averaged probabilities (default %(default)s)",
    )
    best.add_argument(
        "--every-row",
        action="store_true",
        help="--retrain, then train the same networks again on every row for predict, where the file's test "
        "rows were drawn from a table (as a budget's final stage does); the scores stay the first ones'",
    )
    _add(best, dataclasses.replace(JOBS, help="networks retrained at once (default: number of CPU cores)"))
    best.add_argument(
        "--out", metavar="FILE", help="where --retrain saves the weights (.npz; with --seeds K, FILE-seed0.npz ...)"
    )
    _add(best, DATA_DIR)
    _add_storage(best)

    report = sub.add_parser("report", help="one self-contained HTML page (or Markdown + PNGs) describing a study")
    _add_study(report)
    report.add_argument(
        "--out", metavar="FILE", help="file to write (default: <study>-report.html or .md beside the database)"
    )
    report.add_argument(
        "--format",
        choices=REPORT_FORMATS,
        default="html",
        help="html: one file, images inline; md: Markdown plus a folder of PNGs (default %(default)s)",
    )
    _add(report, dataclasses.replace(DATA_DIR, help=f"{DATA_DIR.help} (for parameter counts)"))
    _add_storage(report)

    predict = sub.add_parser("predict", help="predict with the final networks of `best --retrain` on new inputs")
    _add_study(predict)
    predict.add_argument(
        "input", metavar="INPUT", help="a file in the study's form (table, .npz, folder of images, or one image)"
    )
    predict.add_argument(
        "--out",
        metavar="FILE",
        help="CSV of each row's predicted class and class probabilities (default: standard output)",
    )
    predict.add_argument(
        "--unseen",
        choices=("error", "ignore"),
        default="error",
        help="a category never seen in training: an error naming it, or encoded as none (default %(default)s)",
    )
    predict.add_argument(
        "--non-numeric",
        choices=("error", "missing"),
        default="error",
        help="text in a column the study read as numbers: an error naming the column and lines, "
        "or read as a missing value (default %(default)s)",
    )
    _add_storage(predict)

    export = sub.add_parser("export", help="the final networks with the study's preprocessing as one ONNX file")
    _add_study(export)
    export.add_argument(
        "--format", choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0], help="file format (default %(default)s)"
    )
    export.add_argument("--out", metavar="FILE", required=True, help="the file to write, e.g. model.onnx")
    _add_storage(export)
    return parser


def _given(args: argparse.Namespace, keys: Sequence[str]) -> dict[str, Any]:
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _cmd_run(args: argparse.Namespace) -> int:
    overrides = _given(args, STUDY_SETTINGS)
    spec = build_spec(args.study or "default", args.preset, overrides)
    if args.study is None:  # the study is named after its data
        spec = dataclasses.replace(spec, name=default_study_name(spec))
    given = given_settings(overrides, args.preset)
    return _execute(spec, args, given, create=True)


def _cmd_resume(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage or default_url(args.study), read_only=True)
    try:
        spec, _ = load_spec(storage, args.study)
    finally:
        storage.engine.dispose()
    return _execute(spec, args, set(), create=False)


def _execute(spec: StudySpec, args: argparse.Namespace, given: set[str], *, create: bool) -> int:
    options = Execution(storage=args.storage, **_given(args, [s.name for s in EXECUTION]))
    result = run_job(
        spec, options, given, create=create, announce=lambda text: print(text, file=sys.stderr, flush=True)
    )
    print(format_outcome(result))
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from search.readers.results import format_table, leaderboard, load_results_and_finalists

    df, finalists = load_results_and_finalists(args.study, args.storage)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(format_table(leaderboard(df, args.top)))
    if not finalists.empty:
        print("\nfinalists: fresh runs of the best configurations (mean, sd), best mean first")
        print(format_table(finalists))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from search.readers.plots import make_plots

    for path in make_plots(args.study, args.storage, args.out):
        print(path)
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from search.readers.winner import describe_best
    from search.workers.final import retrain_best

    print(describe_best(args.study, args.storage))
    if args.retrain:
        print(
            retrain_best(
                args.study,
                args.storage,
                out=args.out,
                data_dir=args.data_dir,
                seeds=args.seeds,
                jobs=args.jobs,
                every_row=args.every_row,
            )
        )
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from search.readers.report import write_report

    print(write_report(args.study, args.storage, args.out, args.format, args.data_dir))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from search.readers.predict import predict_file

    prediction = predict_file(
        args.study, args.storage, args.input, unseen=args.unseen, numbers=args.non_numeric, out=args.out
    )
    if args.out is None:
        prediction.table.to_csv(sys.stdout, index=False)
        sys.stdout.flush()  # the rows before the summary, on a terminal showing both
        print(prediction.text, file=sys.stderr)
    else:
        try:
            prediction.table.to_csv(args.out, index=False)
        except OSError as exc:
            raise SearchError(f"cannot write {args.out}: {exc.strerror or exc}") from None
        print(f"{prediction.text}\nwrote {args.out}")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from search.readers.export import export_study

    print(export_study(args.study, args.storage, args.out, format=args.format).text)
    return 0


COMMANDS = {
    "run": _cmd_run,
    "resume": _cmd_resume,
    "show": _cmd_show,
    "plot": _cmd_plot,
    "best": _cmd_best,
    "report": _cmd_report,
    "predict": _cmd_predict,
    "export": _cmd_export,
}


def _dashed_values(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """``--budget -5s`` as ``--budget=-5s``: the value reaches the setting's check, which names it.

    argparse takes a value that starts with a dash for an unknown flag and says only
    "expected one argument"; a flag that takes a value gets the next word whatever it is.
    """
    takes_value = {
        opt
        for sub in parser._subparsers._group_actions[0].choices.values()  # type: ignore[union-attr]
        for action in sub._actions
        if action.nargs is None and action.option_strings
        for opt in action.option_strings
    }
    out: list[str] = []
    words = iter(argv)
    for word in words:
        value = next(words, None) if word in takes_value else None
        if value is not None and value.startswith("-") and value not in takes_value:
            out.append(f"{word}={value}")
        else:
            out += [word] if value is None else [word, value]
    return out


def _check_outputs(args: argparse.Namespace) -> None:
    """A command's ``--out`` (or ``--csv``) never replaces its input, the study's data or its database."""
    outs = {flag: getattr(args, flag[2:], None) for flag in ("--out", "--csv")}
    if any(outs.values()) and getattr(args, "study", None):
        reads = study_files(args.study, args.storage) + ([args.input] if getattr(args, "input", None) else [])
        for flag, out in outs.items():
            written = weights_paths(Path(out), args.seeds) if out and args.command == "best" else [out]
            for path in written:  # best --retrain --seeds K writes FILE-seed0.npz ..., not FILE
                check_output(path, reads, flag)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a path of bytes that are not UTF-8 prints escaped, not as an error
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(errors="backslashreplace")
    try:
        parser = build_parser()
        args = parser.parse_args(_dashed_values(parser, sys.argv[1:] if argv is None else list(argv)))
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
        )
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        _check_outputs(args)
        return COMMANDS[args.command](args)
    except Interrupted as exc:
        print(f"\n{exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (SearchError, DatasetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # `python -m search show ... | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:  # a bug or a broken environment: still one line, the details on -v
        logger.info("unexpected error", exc_info=True)  # shown with -v
        print(
            f"error: unexpected {type(exc).__name__}: {exc} (stored trials are kept; run with -v for the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
