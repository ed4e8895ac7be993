"""The record of ``mlops.compare``: what differs between two model versions, section by section, drawn as aligned
text in a terminal and as one HTML report in a notebook or the Lab. Field names are the ``--json`` and REST names.

Each list holds what differs; ``same`` counts what did not (``unchanged=True`` lists those too, ``changed`` False).
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from jupyter_mlops.records import Record

DIFF_LINES = 400  # a code diff longer than this is cut in the text and HTML views (``to_dict`` keeps it whole)


@dataclass(frozen=True)
class VersionSide(Record):
    """One of the two versions: which it is, and the run that trained it (None: registered from a file)."""

    ref: str  # NAME:VERSION
    aliases: list[str]
    run_id: str | None
    run_name: str | None
    source: str
    created_at: datetime | None


@dataclass(frozen=True)
class ValueChange(Record):
    """A parameter, metric or package on both sides (None: absent on that side)."""

    name: str
    a: str | float | None
    b: str | float | None
    changed: bool


@dataclass(frozen=True)
class DataSide(Record):
    """A dataset or input file one run trained on."""

    ref: str  # dataset NAME:VERSION, or the path of an input file
    digest: str | None
    rows: int | None = None
    columns: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class DataChange(Record):
    """One training input (by dataset name or step input), on each side, and how its profile moved."""

    name: str
    a: DataSide | None
    b: DataSide | None
    changed: bool
    notes: list[str] = field(default_factory=list)  # rows, columns added/removed, dtypes, means, nulls


@dataclass(frozen=True)
class Environment(Record):
    """The two runs' Python and packages, and where each list was read from (None: nowhere)."""

    python_a: str | None
    python_b: str | None
    source_a: str | None  # run:environment/requirements.txt or model:requirements.txt
    source_b: str | None
    packages: list[ValueChange]


@dataclass(frozen=True)
class Code(Record):
    """The two runs' git commits and the diff between them, when a local clone holds both."""

    commit_a: str | None
    commit_b: str | None
    dirty_a: bool = False
    dirty_b: bool = False
    repository: str | None = None
    stat: str | None = None
    diff: str | None = None
    note: str | None = None  # why there is no diff


@dataclass(frozen=True)
class CellChange(Record):
    """One cell of the training notebook that differs: added, removed, modified (its source) or outputs."""

    change: str
    cell_type: str
    index_a: int | None
    index_b: int | None
    source_a: str | None
    source_b: str | None
    diff: list[str] = field(default_factory=list)  # unified lines (-, +, space) of a modified cell's source


@dataclass(frozen=True)
class NotebookDiff(Record):
    """The training notebooks compared cell by cell (nbdime's alignment of the cells)."""

    artifact_a: str | None
    artifact_b: str | None
    cells: list[CellChange]
    note: str | None = None  # why they were not compared


@dataclass(frozen=True)
class Comparison(Record):
    """What differs between two versions: parameters, metrics, training data, environment, code and notebook."""

    a: VersionSide
    b: VersionSide
    params: list[ValueChange]
    metrics: list[ValueChange]
    data: list[DataChange]
    environment: Environment
    code: Code
    notebook: NotebookDiff
    same: dict[str, int]  # per section, how many entries were the same
    missing: list[str]  # what could not be compared, and why

    def headline(self) -> str:
        return f"{_side(self.a)} → {_side(self.b)}"

    # -- text -----------------------------------------------------------------------------------------------------
    def __str__(self) -> str:
        a, b = self.a.ref, self.b.ref
        lines = [self.headline()]
        for title, key, rows in (("Parameters", "params", self.params), ("Metrics", "metrics", self.metrics)):
            lines += ["", _title(title, rows, self.same.get(key, 0))]
            lines += _aligned([[title[:-1].upper(), a, b]] + [[r.name, _v(r.a), _v(r.b)] for r in rows], "  ")
        lines += ["", _title("Training data", self.data, self.same.get("data", 0))]
        for d in self.data:
            lines.append(f"  {d.name}: {_data(d.a)} → {_data(d.b)}")
            lines += [f"      {n}" for n in d.notes]
        env = self.environment
        lines += [
            "",
            f"Environment: python {env.python_a or '?'} → {env.python_b or '?'}; "
            + _title("packages", env.packages, self.same.get("packages", 0)).lower(),
        ]
        lines += _aligned(
            [["PACKAGE", a, b]] + [[p.name, _v(p.a, "(none)"), _v(p.b, "(none)")] for p in env.packages], "  "
        )
        lines += ["", "Code: " + _code_line(self.code)]
        if self.code.stat:
            lines += ["  " + s for s in self.code.stat.splitlines()]
        if self.code.diff:
            lines += ["  " + s for s in _cut(self.code.diff.splitlines())]
        nb = self.notebook
        lines += ["", "Notebook: " + _notebook_line(nb)]
        for c in nb.cells:
            lines.append(f"  {_cell_title(c)}")
            lines += [f"    {d}" for d in (c.diff or _whole(c))]
        if self.missing:
            lines += ["", "Not compared:"] + [f"  - {m}" for m in self.missing]
        return "\n".join(lines)

    # -- HTML -----------------------------------------------------------------------------------------------------
    def _repr_html_(self) -> str:
        a, b = html.escape(self.a.ref), html.escape(self.b.ref)
        parts = [f'<div class="mlops-compare"><h3>{html.escape(self.headline())}</h3>']
        for title, key, rows in (("Parameters", "params", self.params), ("Metrics", "metrics", self.metrics)):
            parts.append(f"<h4>{html.escape(_title(title, rows, self.same.get(key, 0)))}</h4>")
            if rows:
                parts.append(_table([title[:-1].lower(), a, b], [[r.name, _v(r.a), _v(r.b)] for r in rows], rows))
        parts.append(f"<h4>{html.escape(_title('Training data', self.data, self.same.get('data', 0)))}</h4>")
        if self.data:
            body = [[d.name, _data(d.a), _data(d.b), "; ".join(d.notes)] for d in self.data]
            parts.append(_table(["input", a, b, "profile"], body, self.data))
        env = self.environment
        title = (
            f"Environment: python {env.python_a or '?'} → {env.python_b or '?'}; "
            + _title("packages", env.packages, self.same.get("packages", 0)).lower()
        )
        parts.append(f"<h4>{html.escape(title)}</h4>")
        if env.packages:
            body = [[p.name, _v(p.a, "(none)"), _v(p.b, "(none)")] for p in env.packages]
            parts.append(_table(["package", a, b], body, env.packages))
        parts.append(f"<h4>Code: {html.escape(_code_line(self.code))}</h4>")
        if self.code.stat or self.code.diff:
            stat = (self.code.stat or "").splitlines()
            parts.append(_pre([*stat, "", *_cut((self.code.diff or "").splitlines())]))
        parts.append(f"<h4>Notebook: {html.escape(_notebook_line(self.notebook))}</h4>")
        for c in self.notebook.cells:
            parts.append(
                f'<div class="mlops-compare-cell mlops-compare-{c.change}"><b>{html.escape(_cell_title(c))}</b>'
            )
            parts.append(_pre(c.diff or _whole(c)) + "</div>")
        if self.missing:
            parts.append("<h4>Not compared</h4><ul>" + "".join(f"<li>{html.escape(m)}</li>" for m in self.missing))
            parts.append("</ul>")
        return "".join(parts) + "</div>"


# -- helpers --------------------------------------------------------------------------------------------------------
def _side(side: VersionSide) -> str:
    extra = [f"@{a}" for a in side.aliases]
    extra.append(f"run {side.run_id[:8]}" if side.run_id else "no run")
    return f"{side.ref} ({', '.join(extra)})"


def _title(title: str, rows: list[Any], same: int) -> str:
    changed = sum(1 for r in rows if getattr(r, "changed", True))
    return f"{title}: {changed} differ, {same} the same"


def _v(value: Any, empty: str = "") -> str:
    if value is None:
        return empty
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _data(side: DataSide | None) -> str:
    if side is None:
        return "(not used)"
    parts = [f"sha256 {side.digest[:12]}"] if side.digest else []
    if side.rows is not None:
        parts.append(f"{side.rows:,} rows")
    return f"{side.ref}" + (f" ({', '.join(parts)})" if parts else "")


def _code_line(code: Code) -> str:
    def commit(sha: str | None, dirty: bool) -> str:
        return "(none)" if not sha else sha[:12] + (" + uncommitted changes" if dirty else "")

    line = f"commit {commit(code.commit_a, code.dirty_a)} → {commit(code.commit_b, code.dirty_b)}"
    if code.repository:
        line += f" in {code.repository}"
    return line + (f": {code.note}" if code.note else "")


def _notebook_line(nb: NotebookDiff) -> str:
    line = f"{nb.artifact_a or '(none)'} → {nb.artifact_b or '(none)'}"
    if nb.note:
        return f"{line}: {nb.note}"
    return f"{line}: {len(nb.cells)} cell(s) differ"


def _cell_title(c: CellChange) -> str:
    where = {"added": f"cell {c.index_b}", "removed": f"cell {c.index_a}"}.get(c.change, f"cell {c.index_a}")
    if c.change in ("modified", "outputs") and c.index_a != c.index_b:
        where = f"cell {c.index_a} → {c.index_b}"
    what = {"outputs": "outputs changed"}.get(c.change, c.change)
    return f"{where} ({c.cell_type}) {what}"


def _whole(c: CellChange) -> list[str]:
    """An added or removed cell's source, each line marked; nothing for a cell whose outputs alone changed."""
    if c.change == "added":
        return [f"+{line}" for line in (c.source_b or "").splitlines()]
    if c.change == "removed":
        return [f"-{line}" for line in (c.source_a or "").splitlines()]
    return []


def _cut(lines: list[str]) -> list[str]:
    if len(lines) <= DIFF_LINES:
        return lines
    return [*lines[:DIFF_LINES], f"... {len(lines) - DIFF_LINES} more line(s) (the JSON has the whole diff)"]


def _aligned(rows: list[list[str]], indent: str) -> list[str]:
    if len(rows) == 1:
        return []
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _table(header: list[str], rows: list[list[str]], records: list[Any]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)  # header cells are escaped by the caller
    body = "".join(
        f'<tr class="{"" if getattr(rec, "changed", True) else "mlops-compare-same"}">'
        + "".join(f"<td>{html.escape(v)}</td>" for v in row)
        + "</tr>"
        for row, rec in zip(rows, records, strict=True)
    )
    return f'<table class="mlops-table"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _pre(lines: list[str]) -> str:
    colour = {"+": "#1a7f37", "-": "#cf222e", "@": "#6e7781"}
    out = []
    for line in lines:
        text = html.escape(line)
        c = colour.get(line[:1]) if not line.startswith(("+++", "---")) else None
        out.append(f'<span style="color:{c}">{text}</span>' if c else text)
    return '<pre class="mlops-compare-diff">' + "\n".join(out) + "</pre>"


__all__ = [
    "CellChange",
    "Code",
    "Comparison",
    "DataChange",
    "DataSide",
    "Environment",
    "NotebookDiff",
    "ValueChange",
    "VersionSide",
]
