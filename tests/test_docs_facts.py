"""What the docs say about the code is what the code does: paths, names, and the rules stated as numbers.

``tests/test_docs.py`` holds the pages to the command line and to their own
links; this file holds them to the code:

- every module path a page names (``search/study/spec.py``, ``tests/...py::test_x``)
  exists, with the function or class after ``::``; in ARCHITECTURE.md and
  CONTRIBUTING.md, the names given in parentheses right after a module path
  are defined in that module; ARCHITECTURE.md places every module of ``search/``;
- every dotted name a page gives (``search.run``, ``search.study.spec``) imports;
- each rule a page states as a number (the budget's folds, shares and probe,
  the warp, the order of ``run``'s flags, the settings a later ``run`` may
  change, a preset's keys) is read back from the code, mostly by running it,
  so that the numbers live in the code and the page is checked against them.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import re
from collections.abc import Iterator
from dataclasses import fields, replace
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from model.datasets import Dataset
from search.budget import cost as budget_cost
from search.budget.cost import CostModel, n_parameters, probe
from search.budget.plan import Plan, minimum_budget, plan_budget
from search.budget.shares import (
    ENSEMBLE_MAX,
    EPOCH_OVERHEAD,
    FIDELITIES,
    MARGIN,
    SHARES,
    TARGET_TRIALS,
    TRIAL_OVERHEAD,
    WARP,
    WARP_MAX_ROWS,
    WARP_MIN_EPOCHS,
)
from search.cli import build_parser
from search.errors import SearchError
from search.study.spec import DATASET_DEFAULTS, FIXED_SETTINGS, StudySpec, build_spec, check_compatible, load_preset
from tests.conftest import ROOT

ARCHITECTURE = ROOT / "ARCHITECTURE.md"
CONTRIBUTING = ROOT / "CONTRIBUTING.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ARCHITECTURE, CONTRIBUTING, ROOT / "README.md", *DOCS]
MAPS = [ARCHITECTURE, CONTRIBUTING]  # the pages that say which module holds which name


def text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def section(path: Path, title: str) -> str:
    """The body of the ``## title`` section (up to the next heading of level 2)."""
    return text(path).split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def one_line(s: str) -> str:
    """Prose with its line breaks undone, so a phrase can be looked for across them."""
    return re.sub(r"\s+", " ", s)


# ---------------------------------------------------------------- module paths and names

# a file of the repository: search/.../x.py, model/.../x.py, tests/.../x.py (not part of a URL or a longer path)
PATH = re.compile(r"(?<![\w./-])((?:search|model|tests)/(?:[\w-]+/)*[\w-]+\.py)(?:::(\w+))?")
MORE = re.compile(r"`::(\w+)`")  # `::test_x` after a `path::test_y` on the same line: the same file
PACKAGE = re.compile(r"(?<![\w./-])((?:search|model)/(?:\w+/)+)(?![\w.])")
# `path` (`Name`, `other`: ...) -- the names given in the parenthesis right after a path
PATH_WITH_NAMES = re.compile(r"`((?:search|model)/(?:\w+/)*\w+\.py)` \(((?:[^()]|\([^()]*\))*)\)")
NAME = re.compile(r"`([A-Za-z_]\w*)(?:\.\w+)*(?:\([^`]*\))?`")
COMMANDS = frozenset(("run", "resume", "show", "plot", "best", "report", "predict"))  # `run`: the command, not a name


@cache
def names_in(path: str) -> frozenset[str]:
    """Every name a module defines (functions, classes and methods at any depth, assignments, imports)."""
    tree = ast.parse(text(ROOT / path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            found.add(node.target.id)
    for node in tree.body:  # a package's __init__ re-exports what it imports
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return frozenset(found)


def path_mentions(path: Path) -> Iterator[tuple[int, str, str | None]]:
    """(line number, module path, name after ``::`` or None) for every module path a page names."""
    for number, line in enumerate(text(path).splitlines(), start=1):
        last: str | None = None
        events = sorted([(m.start(), "path", m) for m in PATH.finditer(line)]
                        + [(m.start(), "more", m) for m in MORE.finditer(line)], key=lambda e: e[0])
        for _, kind, match in events:
            if kind == "path":
                last = match.group(1)
                yield number, last, match.group(2)
            elif last is not None:
                yield number, last, match.group(1)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_module_path_a_page_names_exists_with_the_function_it_names(page: Path) -> None:
    wrong = []
    for number, module, name in path_mentions(page):
        where = f"{page.relative_to(ROOT)}:{number}"
        if not (ROOT / module).is_file():
            wrong.append(f"{where}: no file {module}")
        elif name is not None and name not in names_in(module):
            wrong.append(f"{where}: {module} defines no {name}")
    packages = {m.group(1) for line in text(page).splitlines() for m in PACKAGE.finditer(line)}
    wrong += [f"{page.relative_to(ROOT)}: no package {p}" for p in sorted(packages) if not (ROOT / p).is_dir()]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("page", MAPS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_the_names_given_with_a_module_are_defined_in_it(page: Path) -> None:
    wrong = []
    body = one_line(text(page))
    for match in PATH_WITH_NAMES.finditer(body):
        module = match.group(1)
        if not (ROOT / module).is_file():
            continue  # the test above names it
        wrong += [f"{page.relative_to(ROOT)}: {module} defines no {name} (`{module}` ({match.group(2)[:60]}...))"
                  for name in NAME.findall(match.group(2)) if name not in names_in(module) | COMMANDS]
    assert not wrong, "\n".join(wrong)


def test_the_map_finds_paths_and_names() -> None:
    """The patterns above see what the pages write (a pattern that matched nothing would pass vacuously)."""
    mentions = list(path_mentions(ARCHITECTURE))
    assert ("search/study/storage.py", "create_running_trial") in {(m, n) for _, m, n in mentions}
    assert sum(1 for _, m, n in mentions if m.startswith("tests/") and n) >= 10
    assert len(PATH_WITH_NAMES.findall(one_line(text(ARCHITECTURE)))) >= 20


# Modules placed by their package's row rather than one of their own.
PLACED_BY_PACKAGE = ("search/readers/report/",)


def test_architecture_places_every_module_of_search() -> None:
    """The module -> process table is kept true as modules are added: a new module needs its row."""
    named = {m for _, m, _ in path_mentions(ARCHITECTURE)}
    missing = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "search").rglob("*.py"))]
    missing = [m for m in missing if m not in named and not m.endswith("/__init__.py")
               and not m.startswith(PLACED_BY_PACKAGE)]
    assert not missing, "ARCHITECTURE.md does not say where these run:\n" + "\n".join(missing)


# ---------------------------------------------------------------- dotted names

DOTTED = re.compile(r"(?<![\w./-])((?:search|model)(?:\.[A-Za-z_]\w*)+)")


def resolves(dotted: str) -> bool:
    """``search.study.spec`` or ``search.run``: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_dotted_name_a_page_gives_imports(page: Path) -> None:
    found = {m.group(1).rstrip(".") for m in DOTTED.finditer(text(page))}
    wrong = sorted(d for d in found if not resolves(d))
    assert not wrong, f"{page.relative_to(ROOT)} names what does not import: {', '.join(wrong)}"


# ---------------------------------------------------------------- the budget's numbers

BUDGET = ROOT / "docs" / "budget.md"
README = ROOT / "README.md"
FREE = CostModel(per_row_param=0.0, per_step=0.0)  # training costs nothing: only a trial's overheads count


def dataset(rows: int, *, features: int = 6, classes: int = 3) -> Dataset:
    """``rows`` of train + validation (a fifth of them validation), and a small test split."""
    rng = np.random.default_rng(0)

    def part(n: int) -> tuple[np.ndarray, np.ndarray]:
        return rng.standard_normal((n, features)).astype(np.float32), (np.arange(n) % classes).astype(np.int64)

    n_val = rows // 5
    (X, y), (Xv, yv), (Xt, yt) = part(rows - n_val), part(n_val), part(30)
    return Dataset("facts", X, y, Xv, yv, Xt, yt, n_classes=classes, normalization="zscore")


def plan(rows: int, budget: float = 600.0, workers: int = 1) -> Plan:
    return plan_budget(budget, dataset(rows), workers, FREE)


def number(s: str) -> int:
    return int(s.replace(",", ""))


def test_the_folds_rule_of_budget_md_is_the_plans() -> None:
    page = one_line(section(BUDGET, "How the time is spent"))
    search = re.search(r"cross-validated on train \+ validation, (\d+) folds, where those hold under ([\d,]+) "
                       r"rows and the search could afford ([\d,]+) holdout trials of (\d+) epochs; else one holdout "
                       r"split", page)
    finalists = re.search(r"Finalist runs take the search's folds, or (\d+) folds under ([\d,]+) rows, "
                          r"else one holdout split", page)
    assert search and finalists, "docs/budget.md no longer states the folds rule in the words this test reads"
    folds, rows, trials, epochs = (number(g) for g in search.groups())
    finalist_folds, finalist_rows = (number(g) for g in finalists.groups())
    # the rows: just under the limit the search is cross-validated, at it one holdout split
    assert plan(rows - 1).cv == folds and plan(rows).cv == 1
    assert plan(rows - 1).finalist_cv == folds  # the finalists keep the search's folds
    assert plan(rows).finalist_cv == plan(finalist_rows - 1).finalist_cv == finalist_folds
    assert plan(finalist_rows).finalist_cv == 1
    # the affordability: with free training a trial costs its overheads only; just more than
    # `trials` of `epochs` epochs each (one worker, the search's share) and the search is cross-validated
    trial = epochs * EPOCH_OVERHEAD + TRIAL_OVERHEAD
    enough = trials * trial / SHARES["search"]
    assert plan(rows - 1, budget=enough * 1.25).cv == folds
    assert plan(rows - 1, budget=enough * 0.8).cv == 1


def percent(x: float) -> int:
    return round(100 * x)


def test_the_shares_the_pages_give_are_the_codes() -> None:
    table = section(BUDGET, "How the time is spent")
    rows = dict(re.findall(r"^\| ([\w -]+?) \| (\d+)% \|", table, flags=re.M))
    assert rows == {"search": str(percent(SHARES["search"])), "finalists": str(percent(SHARES["finalists"])),
                    "final networks": str(percent(SHARES["final"])), "margin": str(percent(MARGIN))}
    readme = one_line(section(README, "A time budget"))
    stated = re.search(r"then the search takes (\d+)% .*?the finalists (\d+)%, the final networks .*? (\d+)%; "
                       r"(\d+)% is margin", readme)
    assert stated, "README's 'A time budget' no longer states the shares in the words this test reads"
    assert [int(g) for g in stated.groups()] == [percent(SHARES[s]) for s in ("search", "finalists", "final")] + [
        percent(MARGIN)
    ]


def test_the_plans_other_figures_in_budget_md_are_the_codes() -> None:
    page = one_line(section(BUDGET, "How the time is spent"))
    fidelities = ", ".join(map(str, FIDELITIES))
    assert f"the most of {fidelities} at which the search share affords {TARGET_TRIALS} trials" in page
    assert f"Finalist runs of {WARP_MIN_EPOCHS} epochs or more" in page
    assert f"on image sets under {WARP_MAX_ROWS:,} training rows are warped" in page
    assert f"warped (strength {WARP:g})" in page
    assert f"as many networks (up to {ENSEMBLE_MAX})" in page


WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight", 9: "nine"}


def test_the_minimum_budget_budget_md_states_is_the_codes() -> None:
    page = one_line(section(BUDGET, "What is guaranteed"))
    stated = re.search(r"too small\*\* for (\w+) epochs of the smallest network \(one layer of (\d+) units, "
                       r"batch (\d+)\) in each stage's share, the margin kept, plus (\d+) s of start-up", page)
    assert stated, "docs/budget.md no longer states the minimum budget in the words this test reads"
    epochs = {word: n for n, word in WORDS.items()}[stated.group(1)]
    units, batch, start_up = (int(g) for g in stated.groups()[1:])
    data, cost = dataset(500), CostModel(per_row_param=1e-9, per_step=1e-3)
    smallest = cost.epoch_seconds(len(data.y_train), len(data.y_val),
                                  n_parameters(data.n_features, (units,), data.n_classes), batch)
    least = max(epochs * smallest / share for share in SHARES.values()) / (1 - MARGIN) + start_up
    assert minimum_budget(data, 1, cost) == pytest.approx(least)


def test_the_probe_the_pages_describe_is_the_one_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[tuple[tuple[int, ...], int, int]] = []  # (hidden, batch, rows) of each network the probe times
    epochs: set[int] = set()

    class Recorded(budget_cost.Training):
        def __init__(self, config, X, *args, **kwargs):
            trained.append((config.hidden, config.batch_size, len(X)))
            epochs.add(config.epochs)
            super().__init__(config, X, *args, **kwargs)

    monkeypatch.setattr(budget_cost, "Training", Recorded)
    probe(dataset(3000, features=4))
    widths = [w for hidden, _, _ in trained for w in hidden]
    batches = [b for _, b, _ in trained]
    rows = {r for _, _, r in trained}
    assert len(rows) == 1
    (sample,) = rows
    page = one_line(section(BUDGET, "How the time is spent"))
    (trains,) = epochs
    assert (f"trains {WORDS[trains]} epochs of {WORDS[len(trained)]} networks of different sizes on up to "
            f"{sample:,} training rows") in page
    assert (f"the probe's {WORDS[len(trained)]} networks ({min(widths)} to {max(widths)} units, "
            f"batches {min(batches)} to {max(batches)})") in page
    assert f"{WORDS[len(trained)].capitalize()} networks are timed first" in one_line(section(README, "A time budget"))


# ---------------------------------------------------------------- settings


def run_flags_of_the_parser() -> list[str]:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return [a.option_strings[-1] for a in sub.choices["run"]._actions if a.option_strings and a.dest != "help"]


def run_flags_of_cli_md() -> list[str]:
    run = section(ROOT / "docs" / "cli.md", "run")
    cells = [line.split("|")[1] for line in run.splitlines() if line.startswith("| `--")]
    return [flag for cell in cells for flag in re.findall(r"`(--[\w-]+)", cell)]


def test_cli_md_lists_runs_flags_in_the_parsers_order() -> None:
    """The table of docs/cli.md's `run` is in the order of `run --help` (RUN_SETTINGS, then the execution's)."""
    assert run_flags_of_cli_md() == run_flags_of_the_parser()


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_the_settings_a_later_run_may_change_are_the_ones_cli_md_names() -> None:
    changeable = {f.name for f in fields(StudySpec)} - set(FIXED_SETTINGS) - {"name", "preset"}
    stated = re.search(r"only ((?:`--[\w-]+`(?:, | and )?)+) may change", one_line(section(ROOT / "docs" / "cli.md",
                                                                                          "run")))
    assert stated, "docs/cli.md's run section no longer says which settings may change"
    assert set(re.findall(r"`(--[\w-]+)`", stated.group(1))) == {flag(n) for n in changeable}
    # and check_compatible lets exactly those through from a new run
    stored = StudySpec(name="s")
    wanted = replace(stored, trials=stored.trials + 1, budget=60.0)
    merged = check_compatible(stored, wanted, changeable)
    assert (merged.trials, merged.budget) == (wanted.trials, wanted.budget)


def test_a_presets_keys_in_space_md_are_the_ones_load_preset_takes(tmp_path: Path) -> None:
    preset = tmp_path / "p.toml"
    preset.write_text("no_such_key = 1\n", encoding="utf-8")
    with pytest.raises(SearchError) as refused:
        load_preset(preset)
    listing = re.search(r"known: (.*), \[space\]", str(refused.value))
    assert listing, refused.value
    known = set(listing.group(1).split(", "))
    presets = section(ROOT / "docs" / "space.md", "Presets")
    keys = presets.split("**Top-level keys**", 1)[1].split("**The `[space]` table**", 1)[0]
    listed = set(re.findall(r"`(\w+)`", keys)) - {"space"}
    assert listed == known, f"docs/space.md lists {sorted(listed - known)} too many, {sorted(known - listed)} missing"


def test_a_budget_skips_the_data_sets_defaults_and_a_preset_leaves_the_plan_nothing() -> None:
    """space.md's order of settings: StudySpec, the data set's (not under a budget: the plan's), preset, flags."""
    digits = DATASET_DEFAULTS["digits"]
    assert build_spec("x", None, {}).epochs == digits["epochs"] != StudySpec.epochs
    assert build_spec("x", None, {"budget": 60.0}).epochs == StudySpec.epochs  # the plan decides instead
    # with a preset every fixed setting counts as given: the plan's settings are all among them
    assert set(plan(500).settings()) <= set(FIXED_SETTINGS)
    page = one_line(section(ROOT / "docs" / "space.md", "Presets"))
    assert "under a budget, the plan's instead" in page and "so the plan sets none of them" in page
