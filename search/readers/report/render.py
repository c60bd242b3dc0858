"""A report as plain blocks, written out as one self-contained HTML file or Markdown + PNGs.

Why blocks: the sections are built once and both formats render the same
content. The HTML carries its CSS and images inline (base64 PNG data URIs), no
script and nothing fetched, so it opens offline and can be mailed as one file.
Numbers a test or a script may want to check carry ``data-key`` (and the exact
value in ``data-value``), so they can be read from the page without parsing prose.
"""

from __future__ import annotations

import base64
import html
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Fact:
    label: str
    text: str
    key: str | None = None       # data-key: a stable name for tests and scripts
    value: object = None         # data-value: the exact number behind ``text``


@dataclass(frozen=True)
class Facts:
    rows: list[Fact]


@dataclass(frozen=True)
class Text:
    text: str
    code: bool = False


@dataclass(frozen=True)
class Table:
    frame: pd.DataFrame          # already formatted as strings
    key: str | None = None       # data-key of the table; cells get data-key="<key>.<row>.<column>"
    index: bool = False


@dataclass(frozen=True)
class Image:
    name: str                    # file name in Markdown output
    png: bytes
    alt: str


Block = Facts | Text | Table | Image


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    blocks: list[Block] = field(default_factory=list)


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1180px;margin:2em auto;
padding:0 1em;color:#1b1b1b;line-height:1.45}
h1{font-size:1.7em;margin-bottom:.2em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.8em 0;font-size:.88em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:right;white-space:nowrap}th{background:#f3f3f3}
td:first-child,th:first-child{text-align:left}
table.facts td:first-child{font-weight:600;background:#fafafa}table.facts td{text-align:left;white-space:normal}
img{max-width:100%;height:auto;display:block;margin:.8em 0;border:1px solid #eee}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;white-space:pre-wrap}
nav a{margin-right:1em}p.note{color:#555;font-size:.9em}code{background:#f3f3f3;padding:0 .2em}
"""


def _prose(text: str) -> str:
    """Escaped text with `backticked` spans as <code>, as in the Markdown output."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _attrs(key: str | None, value: object = None) -> str:
    out = f' data-key="{html.escape(key)}"' if key else ""
    if value is not None:
        out += f' data-value="{html.escape(str(value))}"'
    return out


def _html_table(table: Table) -> str:
    frame = table.frame
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in ([frame.index.name or ""] if table.index else [])
                   + list(frame.columns))
    rows = []
    for label, row in frame.iterrows():
        cells = [f"<td>{html.escape(str(label))}</td>"] if table.index else []
        for column, cell in row.items():
            key = f"{table.key}.{label}.{column}" if table.key else None
            cells.append(f"<td{_attrs(key)}>{html.escape(str(cell))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table{_attrs(table.key)}><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _html_block(block: Block) -> str:
    if isinstance(block, Facts):
        rows = "".join(f"<tr><td>{html.escape(f.label)}</td><td{_attrs(f.key, f.value)}>"
                       f"{html.escape(f.text)}</td></tr>" for f in block.rows)
        return f'<table class="facts"><tbody>{rows}</tbody></table>'
    if isinstance(block, Text):
        return f"<pre>{html.escape(block.text)}</pre>" if block.code else f"<p>{_prose(block.text)}</p>"
    if isinstance(block, Table):
        return _html_table(block)
    if isinstance(block, Image):
        data = base64.b64encode(block.png).decode("ascii")
        return f'<img alt="{html.escape(block.alt)}" src="data:image/png;base64,{data}">'
    raise TypeError(f"not a report block: {block!r}")


def sections_html(sections: list[Section], level: int = 2) -> str:
    """The sections alone, headed at ``<h{level}>``: the page's body, or a notebook cell's output."""
    return "\n".join(
        f'<section id="{s.key}"><h{level}>{html.escape(s.title)}</h{level}>\n'
        + "\n".join(_html_block(b) for b in s.blocks) + "</section>" for s in sections)


def to_html(title: str, subtitle: str, sections: list[Section]) -> str:
    nav = " ".join(f'<a href="#{s.key}">{html.escape(s.title)}</a>' for s in sections)
    body = sections_html(sections)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{html.escape(title)}</title><style>{CSS}</style></head>\n<body>"
            f'<h1>{html.escape(title)}</h1><p class="note">{_prose(subtitle)}</p><nav>{nav}</nav>\n'
            f"{body}\n</body></html>\n")


def _md_cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_table(frame: pd.DataFrame, index: bool) -> str:
    columns = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(_md_cell(c) for c in columns) + " |", "|" + "---|" * len(columns)]
    for label, row in frame.iterrows():
        cells = ([label] if index else []) + list(row)
        lines.append("| " + " | ".join(_md_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def to_markdown(title: str, subtitle: str, sections: list[Section], images: Path) -> str:
    """Markdown text; each image is written into ``images`` and linked relative to its parent."""
    images.mkdir(parents=True, exist_ok=True)
    out = [f"# {title}", "", f"_{subtitle}_", ""]
    for section in sections:
        out += [f"## {section.title}", ""]
        for block in section.blocks:
            if isinstance(block, Facts):
                frame = pd.DataFrame({"": [f.label for f in block.rows], " ": [f.text for f in block.rows]})
                out.append(_md_table(frame, False))
            elif isinstance(block, Text):
                out.append(f"```\n{block.text}\n```" if block.code else block.text)
            elif isinstance(block, Table):
                out.append(_md_table(block.frame, block.index))
            elif isinstance(block, Image):
                (images / block.name).write_bytes(block.png)
                out.append(f"![{block.alt}]({images.name}/{block.name})")
            out.append("")
    return "\n".join(out)
