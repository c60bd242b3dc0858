"""Command line: the only place that prints errors and chooses exit codes.

Every expected problem (bad flag, missing study, unusable file, missing data set)
becomes ``error: <one line>`` on stderr and exit code 2; Ctrl-C exits 130 after
recording the in-flight trials; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import optuna

from model.datasets import DATASETS, MISSING, DatasetError
from search.budget import format_duration, parse_duration
from search.coordinator import Interrupted, RunSummary
from search.datafile import describe_data
from search.errors import SearchError
from search.executors import EXECUTORS
from search.job import Execution, JobResult, run_job
from search.results import REPORT_FORMATS
from search.spec import (
    DATASET_DEFAULTS,
    FIXED_SETTINGS,
    PRUNERS,
    SAMPLERS,
    StudySpec,
    build_spec,
    check_study_name,
    default_study_name,
)
from search.storage import default_url, open_storage
from search.study import load_spec

logger = logging.getLogger("search")

EXIT_ERROR = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, not usage + traceback-like noise
        raise SearchError(f"{message} (see 'python -m search {self.prog.split()[-1]} --help')")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"whole number >= {low}"  # argparse names the type in some messages
    return parse


_positive_int = _int_at_least(1)
_nonnegative_int = _int_at_least(0)


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except SearchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _study_name(text: str) -> str:
    try:
        return check_study_name(text)
    except SearchError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_storage(p: argparse.ArgumentParser) -> None:
    p.add_argument("--storage", metavar="URL",
                   help="SQLAlchemy URL of the study database (default: sqlite:///studies/<study>.db, relative "
                        "to the working directory)")


def _add_execution(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=_positive_int, metavar="K",
                   help="worker processes (default: number of CPU cores)")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="stop after this many seconds: no trial starts that could not finish by then, and what "
                        "still runs then is stopped and recorded for a re-run")
    p.add_argument("--data-dir", metavar="DIR", help="directory holding the data set files")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--executor", choices=EXECUTORS, default="local",
                   help="where trials run: local worker processes, or a Dask cluster (default local)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler, e.g. tcp://host:8786 (with --executor dask; default: "
                        "a local Dask cluster of --jobs processes)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m search",
                     description="Parallel Optuna hyperparameter search for NumPy networks.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="create a study or continue one, until it holds N finished trials")
    run.add_argument("--trials", type=_positive_int, metavar="N",
                     help="finished (complete + pruned) trials the study should hold (default 200; with --budget, "
                          "a ceiling)")
    run.add_argument("--budget", type=_duration, metavar="DURATION",
                     help="wall-clock time of the whole job, e.g. 90s, 30m, 2h: the search, the finalists and the "
                          "final networks, planned from this data's measured costs (docs/budget.md)")
    run.add_argument("--study", type=_study_name, metavar="NAME", help="study name (default: the data set)")
    which = run.add_mutually_exclusive_group()
    which.add_argument("--dataset", choices=DATASETS, help="a built-in data set (default digits)")
    which.add_argument("--data", metavar="PATH",
                       help="your own data: an .npz, a CSV/TSV table (gzipped too) or a folder of images with one "
                            "sub-folder per class (docs/own-data.md)")
    run.add_argument("--target", metavar="COLUMN", help="a table's label column (default: the last column)")
    run.add_argument("--x-key", metavar="KEY", help="an .npz's feature array (default: by convention, e.g. x_train, "
                                                    "X, data, images)")
    run.add_argument("--y-key", metavar="KEY", help="an .npz's label array (default: by convention)")
    run.add_argument("--image-size", metavar="HxW", help="resize every image to H x W pixels (default: as they are; "
                                                         "they must then share one size)")
    run.add_argument("--missing", choices=MISSING,
                     help="a table's missing values: impute (median + indicator, or a category of their own; "
                          "the default) or refuse them")
    run.add_argument("--epochs", type=_positive_int, metavar="E",
                     help=f"most epochs per search trial (default {DATASET_DEFAULTS['digits']['epochs']} on digits, "
                          f"{StudySpec.epochs} otherwise; when given, also the finalists' epochs unless a preset "
                          "sets finalist_epochs)")
    run.add_argument("--sampler", choices=SAMPLERS, help="Optuna sampler (default tpe; gp needs PyTorch)")
    run.add_argument("--pruner", choices=PRUNERS, help="pruner on validation loss (default median)")
    run.add_argument("--seed", type=_nonnegative_int, metavar="S", help="study seed (default 0)")
    run.add_argument("--preset", metavar="FILE", help="study preset TOML, e.g. studies/digits.toml")
    run.add_argument("--cv", type=_positive_int, metavar="K",
                     help="k-fold cross-validation on train + validation for every search trial (default 1: "
                          f"one holdout split; finalists use finalist_cv, {DATASET_DEFAULTS['digits']['finalist_cv']} "
                          "on digits)")
    run.add_argument("--finalists", type=_nonnegative_int, metavar="K",
                     help="after the search, run the K best configurations again on fresh seeds and "
                          "choose the best mean (default 5; 0: no finalist stage)")
    run.add_argument("--test-seed", type=_nonnegative_int, metavar="S",
                     help="digits only: which 20%% of the images is the test split, read only by "
                          "`best --retrain` (default 0: the same test images for every study)")
    run.add_argument("--deterministic", action="store_true", default=None,
                     help="same seed -> same trials and values whatever --jobs is (sampled in batches)")
    _add_storage(run)
    _add_execution(run)

    resume = sub.add_parser("resume", help="continue a study with the settings stored on it")
    resume.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    _add_storage(resume)
    _add_execution(resume)

    show = sub.add_parser("show", help="leaderboard of a study")
    show.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    show.add_argument("--top", type=_positive_int, default=10, metavar="K", help="rows to show (default 10)")
    show.add_argument("--csv", metavar="FILE", help="also write every trial to this CSV file")
    _add_storage(show)

    plot = sub.add_parser("plot", help="heatmaps, learning curves and history as PNG files")
    plot.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    plot.add_argument("--out", metavar="DIR", help="output directory (default: beside the database)")
    _add_storage(plot)

    best = sub.add_parser("best", help="best parameters and scores; --retrain scores on the test split")
    best.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    best.add_argument("--retrain", action="store_true",
                      help="retrain the best configuration on train+validation and score it on test")
    best.add_argument("--seeds", type=_positive_int, default=1, metavar="K",
                      help="--retrain K networks with different seeds: test accuracy as mean ± sd, "
                           "and of their averaged probabilities (default 1)")
    best.add_argument("--jobs", type=_positive_int, metavar="K",
                      help="networks retrained at once (default: number of CPU cores)")
    best.add_argument("--out", metavar="FILE", help="where --retrain saves the weights (.npz; with "
                                                    "--seeds K, FILE-seed0.npz ...)")
    best.add_argument("--data-dir", metavar="DIR", help="directory holding the data set files")
    _add_storage(best)

    report = sub.add_parser("report", help="one self-contained HTML page (or Markdown + PNGs) describing a study")
    report.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    report.add_argument("--out", metavar="FILE",
                        help="file to write (default: <study>-report.html or .md beside the database)")
    report.add_argument("--format", choices=REPORT_FORMATS, default="html",
                        help="html: one file, images inline; md: Markdown plus a folder of PNGs (default html)")
    report.add_argument("--data-dir", metavar="DIR",
                        help="directory holding the data set files (for parameter counts)")
    _add_storage(report)

    predict = sub.add_parser("predict", help="predict with the final networks of `best --retrain` on new inputs")
    predict.add_argument("--study", type=_study_name, required=True, metavar="NAME", help="study name")
    predict.add_argument("input", metavar="INPUT",
                         help="a file in the study's form (table, .npz, folder of images, or one image)")
    predict.add_argument("--out", metavar="FILE",
                         help="CSV of each row's predicted class and class probabilities (default: standard output)")
    predict.add_argument("--unseen", choices=("error", "ignore"), default="error",
                         help="a category never seen in training: an error naming it, or encoded as none "
                              "(default error)")
    _add_storage(predict)
    return parser


def _given(args: argparse.Namespace, keys: Sequence[str]) -> dict[str, Any]:
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def _cmd_run(args: argparse.Namespace) -> int:
    overrides = _given(args, ("dataset", "trials", "epochs", "sampler", "pruner", "seed", "deterministic",
                              "cv", "finalists", "test_seed", "data", "target", "x_key", "y_key", "image_size",
                              "missing", "budget"))
    spec = build_spec(args.study or "default", args.preset, overrides)
    if args.study is None:  # the study is named after its data
        spec = dataclasses.replace(spec, name=default_study_name(spec))
    # a preset states every setting it holds; flags state only themselves
    given = set(FIXED_SETTINGS) if args.preset else set(overrides)
    return _execute(spec, args, given, create=True)


def _cmd_resume(args: argparse.Namespace) -> int:
    storage = open_storage(args.storage or default_url(args.study), read_only=True)
    try:
        spec, _ = load_spec(storage, args.study)
    finally:
        storage.engine.dispose()
    return _execute(spec, args, set(), create=False)


def _execute(spec: StudySpec, args: argparse.Namespace, given: set[str], *, create: bool) -> int:
    options = Execution(args.storage, args.jobs, args.timeout, args.data_dir, not args.no_progress, args.executor,
                        args.scheduler)
    result = run_job(spec, options, given, create=create,
                     announce=lambda text: print(text, file=sys.stderr, flush=True))
    print(format_summary(result.summary, result.url, result.jobs, result.record))
    if result.budget is not None:
        print(format_budget(result))
    return 0


def format_summary(s: RunSummary, url: str, jobs: int, record: dict[str, Any] | None = None) -> str:
    def mean(xs: Sequence[float]) -> str:
        return f"{sum(xs) / len(xs):.1f}" if xs else "-"

    writes = sum(sum(v) for v in s.write_ms.values()) / max(1, s.ran + s.failed + s.retries)
    best = "-" if s.best_number is None else (
        f"trial {s.best_number}: val loss {s.best_value:.4f}, val accuracy {s.best_accuracy:.4f}")
    rows = [
        ("study", f"{s.study}  ({url})"),
        ("trials in study", f"{s.finished} finished ({s.complete} complete, {s.pruned} pruned)"),
        ("this run", f"{s.ran} finished, {s.failed} failed, {s.retries} retried, "
                     f"{s.wall_seconds:.1f} s with {jobs} workers"),
        ("finalist runs", f"{s.finalist_runs} in the study"),
        ("epochs", f"{s.epochs_run} run of {s.epochs_budget} budgeted"),
        ("best", best),
        ("coordinator ms/trial", f"ask {mean(s.ask_ms)}, dispatch {mean(s.dispatch_ms)}, "
                                 f"collect {mean(s.collect_ms)}, storage writes {writes:.1f} (off-path)"),
        ("workers busy", f"{s.worker_busy:.0%} of wall time after start-up; "
                         f"peak RSS of a worker {s.worker_peak_rss_mb:.0f} MB"),
        *(describe_data(record) if record else []),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


def format_budget(r: JobResult) -> str:
    """How the budget was planned and spent, stage by stage; then the final networks."""
    assert r.budget is not None
    used = r.spent_before + sum(r.stages.values())
    rows = [("budget", f"{format_duration(r.budget)}: {format_duration(used)} used ({used / r.budget:.0%})"
                       + (f", {format_duration(r.spent_before)} of it by earlier runs" if r.spent_before else ""))]
    rows += [(f"  {stage}", f"{format_duration(s)} ({s / r.budget:.0%})") for stage, s in r.stages.items()]
    if r.plan is not None:
        rows += r.plan.describe()
    width = max(len(k) for k, _ in rows)
    text = "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
    return text + (f"\n{r.final}" if r.final else "")


def _cmd_show(args: argparse.Namespace) -> int:
    from search.results import format_table, leaderboard, load_results_and_finalists

    df, finalists = load_results_and_finalists(args.study, args.storage)
    if args.csv:
        df.to_csv(args.csv, index=False)
    print(format_table(leaderboard(df, args.top)))
    if not finalists.empty:
        print("\nfinalists: fresh runs of the best configurations (mean, sd), best mean first")
        print(format_table(finalists))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from search.plots import make_plots

    for path in make_plots(args.study, args.storage, args.out):
        print(path)
    return 0


def _cmd_best(args: argparse.Namespace) -> int:
    from search.retrain import describe_best, retrain_best

    print(describe_best(args.study, args.storage))
    if args.retrain:
        print(retrain_best(args.study, args.storage, out=args.out, data_dir=args.data_dir, seeds=args.seeds,
                           jobs=args.jobs))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from search.report import write_report

    print(write_report(args.study, args.storage, args.out, args.format, args.data_dir))
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from search.predict import predict_file

    prediction = predict_file(args.study, args.storage, args.input, unseen=args.unseen)
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


COMMANDS = {"run": _cmd_run, "resume": _cmd_resume, "show": _cmd_show, "plot": _cmd_plot, "best": _cmd_best,
            "report": _cmd_report, "predict": _cmd_predict}


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(levelname)s %(name)s: %(message)s")
        optuna.logging.set_verbosity(optuna.logging.WARNING)
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
        print(f"error: unexpected {type(exc).__name__}: {exc} (stored trials are kept; "
              "run with -v for the traceback)", file=sys.stderr)
        return EXIT_INTERNAL
