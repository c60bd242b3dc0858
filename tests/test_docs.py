"""The README and docs/ cannot drift from the command line or from their own headings.

Three checks, each against the real thing rather than a copy of it:

- every command line a page shows (``python -m search <command> --flag ...`` or
  ``numpy-hpsearch ...`` in a code block or inline code, and inline code that starts
  with a subcommand, such as ``best --retrain``) names a subcommand and flags that
  ``search.cli.build_parser()`` has, for that subcommand;
- ``docs/cli.md`` documents every subcommand and flag of the parser, in the section
  of its command, and names no flag the parser lacks;
- every relative link (``[..](#anchor)``, ``[..](file.md#anchor)``, ``[..](dir/)``)
  points to a file that exists and to a heading that exists, slugged as GitHub does;
- the search-space tables of ``docs/space.md`` are the spaces the code samples.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from search.cli import build_parser
from search.study.space import DEFAULT_SPACE, Choice, Dim, Float, Int
from search.study.spec import build_spec
from tests.conftest import ROOT

DOCS = sorted((ROOT / "docs").glob("*.md"))
COMMAND_PAGES = [ROOT / "README.md", *DOCS]
LINK_PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", ROOT / "CONTRIBUTING.md", *DOCS]
CLI_PAGE = ROOT / "docs" / "cli.md"

PROGRAMS = re.compile(r"(?<![\w/.-])(?:python3? -m search|numpy-hpsearch)(?![\w/.-])")
FLAG = re.compile(r"^(--[A-Za-z0-9][\w-]*|-[A-Za-z])(?:=.*)?$")
LONG_FLAG = re.compile(r"(?<![\w-])--[A-Za-z0-9][\w-]*")
# where a command line shown in a code block ends: a comment, a chained command, a pipe
COMMAND_END = re.compile(r"\s#|&&|\|\||[|;)`]")
INLINE_CODE = re.compile(r"`([^`\n]+)`")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HELP = {"-h", "--help"}


# ---------------------------------------------------------------- the parser


@dataclass(frozen=True)
class Cli:
    global_flags: frozenset[str]
    commands: dict[str, frozenset[str]]  # subcommand -> its option strings, help excluded


def _options(parser: argparse.ArgumentParser) -> frozenset[str]:
    return frozenset(opt for action in parser._actions for opt in action.option_strings) - HELP


def read_cli() -> Cli:
    parser = build_parser()
    (sub,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return Cli(_options(parser), {name: _options(p) for name, p in sub.choices.items()})


CLI = read_cli()


# ---------------------------------------------------------------- reading markdown


@dataclass(frozen=True)
class Line:
    number: int
    text: str
    code: bool  # inside a fenced or indented code block


def lines_of(text: str) -> list[Line]:
    """Each line, marked as code (fenced, or indented 4 spaces after a blank or code line) or prose."""
    out: list[Line] = []
    fenced = False
    previous_blank_or_code = True
    for number, line in enumerate(text.splitlines(), start=1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            out.append(Line(number, "", True))
            previous_blank_or_code = True
            continue
        indented = line.startswith("    ") and previous_blank_or_code and line.strip() != ""
        code = fenced or indented
        out.append(Line(number, line, code))
        previous_blank_or_code = line.strip() == "" or code
    return out


def code_snippets(text: str) -> Iterator[tuple[int, str, bool]]:
    """(line number, text, is_block) of every code block line (continuations joined) and inline code span."""
    pending: tuple[int, str] | None = None
    for line in lines_of(text):
        if line.code:
            start, joined = pending if pending else (line.number, "")
            joined += " " + line.text.strip()
            if joined.endswith("\\"):
                pending = (start, joined[:-1])
                continue
            pending = None
            yield start, joined.strip(), True
        else:
            for span in INLINE_CODE.findall(line.text):
                yield line.number, span, False


@dataclass(frozen=True)
class Mention:
    """A command line a page shows: which subcommand, and the flags given to it."""

    page: str
    line: int
    text: str
    global_flags: tuple[str, ...]
    command: str | None
    flags: tuple[str, ...]

    def problems(self) -> list[str]:
        where = f"{self.page}:{self.line}: {self.text!r}"
        wrong = [f"{where}: the parser has no global flag {f}" for f in self.global_flags if f not in CLI.global_flags]
        if self.command is None:
            return wrong
        if self.command not in CLI.commands:
            return [*wrong, f"{where}: the parser has no subcommand {self.command!r} "
                            f"(it has {', '.join(CLI.commands)})"]
        known = CLI.commands[self.command] | HELP
        return [*wrong, *(f"{where}: '{self.command}' has no flag {f}" for f in self.flags if f not in known)]


def _mention(page: str, line: int, words: list[str], text: str) -> Mention:
    words = [w.strip("[]{}()") for w in words]  # usage syntax: [--seeds K]
    global_flags: list[str] = []
    while words and FLAG.match(words[0]):
        global_flags.append(FLAG.match(words.pop(0)).group(1))  # type: ignore[union-attr]
    command = words.pop(0) if words else None
    flags = tuple(m.group(1) for w in words if (m := FLAG.match(w)))
    return Mention(page, line, text, tuple(global_flags), command, flags)


def _command_lines(snippet: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each command line in a code snippet."""
    for match in PROGRAMS.finditer(snippet):
        end = COMMAND_END.search(snippet, match.end())
        yield match.start(), end.start() if end else len(snippet)


def mentions_in(text: str, page: str) -> Iterator[Mention]:
    """Every command line in a markdown text."""
    for line, snippet, block in code_snippets(text):
        for start, end in _command_lines(snippet):
            program = PROGRAMS.match(snippet, start)
            assert program is not None
            yield _mention(page, line, snippet[program.end():end].split(), snippet[start:end].strip())
        first = snippet.split(maxsplit=1)
        if not block and first and first[0] in CLI.commands and LONG_FLAG.search(snippet):
            yield _mention(page, line, snippet.split(), snippet)  # `best --retrain`


def mentions(path: Path) -> list[Mention]:
    return list(mentions_in(path.read_text(encoding="utf-8"), path.relative_to(ROOT).as_posix()))


# ---------------------------------------------------------------- (a) command lines


def test_the_pages_with_command_lines_are_found() -> None:
    assert (ROOT / "README.md") in COMMAND_PAGES and CLI_PAGE in COMMAND_PAGES
    shown = [m for page in COMMAND_PAGES for m in mentions(page)]
    assert any(m.command == "run" for m in shown) and any("--retrain" in m.flags for m in shown)


@pytest.mark.parametrize("page", COMMAND_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_command_line_names_a_subcommand_and_flags_the_parser_has(page: Path) -> None:
    problems = [p for m in mentions(page) for p in m.problems()]
    assert not problems, "\n".join(problems)


def test_the_readme_shows_the_main_job_and_the_test_command() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m search run" in readme
    assert 'pip install -e ".[test]" && python -m pytest' in readme  # the command .ci/run runs
    assert len(readme.splitlines()) <= 200, "the README is read top to bottom: reference goes in docs/"


# ---------------------------------------------------------------- (b) docs/cli.md against the parser


def cli_sections() -> dict[str, list[Line]]:
    """docs/cli.md's lines by section: '' for the part before the first subcommand heading."""
    sections: dict[str, list[Line]] = {"": []}
    current = ""
    for line in lines_of(CLI_PAGE.read_text(encoding="utf-8")):
        heading = HEADING.match(line.text) if not line.code else None
        if heading and len(heading.group(1)) == 2:
            words = heading.group(2).replace("`", "").split()
            current = words[0] if words and words[0] in CLI.commands else ""
            sections.setdefault(current, [])
        sections[current].append(line)
    return sections


def test_cli_md_documents_every_subcommand_and_every_flag_in_its_section() -> None:
    sections = cli_sections()
    text = CLI_PAGE.read_text(encoding="utf-8")
    missing = [f"no '## {name}' section" for name in CLI.commands if name not in sections]
    for name, flags in CLI.commands.items():
        body = "\n".join(line.text for line in sections.get(name, []))
        missing += [f"'{name}' section lacks {flag}" for flag in sorted(flags)
                    if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body)]
    missing += [f"no mention of the global flag {flag}" for flag in sorted(CLI.global_flags)
                if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text)]
    assert not missing, "docs/cli.md is out of step with search/cli.py:\n" + "\n".join(missing)


def test_cli_md_names_no_flag_the_parser_lacks() -> None:
    """A flag in a command's section is that command's, unless it sits in a command line of another."""
    all_flags = CLI.global_flags.union(*CLI.commands.values())
    wrong = [p for m in mentions(CLI_PAGE) for p in m.problems()]
    for name, lines in cli_sections().items():
        allowed = (CLI.commands[name] | CLI.global_flags) if name else all_flags
        wrong += [f"docs/cli.md:{number}: {flag} is not a flag of {repr(name) if name else 'any command'}"
                  for number, flag in loose_flags(lines) if flag not in allowed | HELP]
    assert not wrong, "\n".join(wrong)


def loose_flags(lines: list[Line]) -> Iterator[tuple[int, str]]:
    """Flags outside command lines (those are checked against their own command by mentions())."""
    for line in lines:
        chunks = [line.text] if line.code else [INLINE_CODE.sub(" ", line.text), *INLINE_CODE.findall(line.text)]
        for chunk in chunks:
            first = chunk.split(maxsplit=1)
            if first and first[0] in CLI.commands and LONG_FLAG.search(chunk) and not line.code:
                continue  # `best --retrain`: a command line of its own
            for start, end in reversed(list(_command_lines(chunk))):
                chunk = chunk[:start] + chunk[end:]
            for flag in LONG_FLAG.findall(chunk):
                yield line.number, flag


# ---------------------------------------------------------------- (c) links and anchors


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but '-' and '_' dropped, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    found: set[str] = set()
    text = path.read_text(encoding="utf-8")
    for line in lines_of(text):
        heading = HEADING.match(line.text) if not line.code else None
        if heading:
            base = slug(heading.group(2))
            found.add(base if base not in seen else f"{base}-{seen[base]}")  # GitHub numbers repeats
            seen[base] = seen.get(base, 0) + 1
    found |= set(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", text))
    return found


def links(path: Path) -> Iterator[tuple[int, str]]:
    for line in lines_of(path.read_text(encoding="utf-8")):
        if not line.code:
            for target in LINK.findall(INLINE_CODE.sub("", line.text)):
                yield line.number, target


def broken_links(path: Path) -> list[str]:
    wrong = []
    page = path.relative_to(ROOT).as_posix()
    for number, target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            wrong.append(f"{page}:{number}: {target} -> no file {file}")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            wrong.append(f"{page}:{number}: {target} -> no heading '#{anchor}' in {resolved.relative_to(ROOT)}")
    return wrong


def test_slugs_follow_github() -> None:
    assert slug("Search quality: how the winner is chosen") == "search-quality-how-the-winner-is-chosen"
    assert slug("The coordinator at scale (simulated workers)") == "the-coordinator-at-scale-simulated-workers"
    assert slug("`run`: create a study, or continue it") == "run-create-a-study-or-continue-it"
    assert slug("1. Move a study_name from SQLite") == "1-move-a-study_name-from-sqlite"


@pytest.mark.parametrize("page", LINK_PAGES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_link_points_to_a_file_and_heading_that_exist(page: Path) -> None:
    wrong = broken_links(page)
    assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------- docs/space.md against the code


def describe(dim: Dim) -> str:
    """A dimension as docs/space.md's tables write it."""
    if isinstance(dim, Float):
        return f"{'log-uniform' if dim.log else 'uniform'} {dim.low:g} .. {dim.high:g}" + (", or 0" if dim.zero else "")
    if isinstance(dim, Int):
        return f"{'log-uniform ' if dim.log else ''}integer {dim.low} .. {dim.high}"
    if isinstance(dim, Choice):
        return ", ".join(str(value) for value in dim.values)
    return f"fixed at {dim.value}"


def space_md_section(title: str) -> str:
    text = (ROOT / "docs" / "space.md").read_text(encoding="utf-8")
    return text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize(("title", "space"), [
    ("The space a default run uses (digits)", build_spec("x", None, {}).space),
    ("The default space (other data sets)", DEFAULT_SPACE),
])
def test_space_md_shows_the_space_the_code_samples(title: str, space: dict[str, Dim]) -> None:
    section = space_md_section(title)
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    assert len(rows) == len(space), f"{title}: {len(rows)} rows for {len(space)} parameters"
    wrong = [f"| `{name}` | {describe(dim)} |" for name, dim in space.items()
             if f"| `{name}` | {describe(dim)} |" not in section]
    assert not wrong, f"docs/space.md, {title!r}, should have rows starting:\n" + "\n".join(wrong)
