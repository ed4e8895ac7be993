"""Render API results for people (text tables, HTML tables in a notebook) and for scripts (JSON)."""

from __future__ import annotations

import dataclasses
import html
import json
from datetime import datetime
from typing import Any

from jupyter_mlops.records import ModelVersion, Record, RegisteredModel, Run

COLUMNS: dict[type, tuple[str, ...]] = {
    ModelVersion: ("name", "version", "aliases", "tags", "created_by", "created_at", "description"),
    RegisteredModel: ("name", "latest_version", "aliases", "tags", "description"),
    Run: ("run_id", "name", "experiment", "status", "duration_s", "metrics", "start_time"),
}


def columns_of(record_type: type) -> tuple[str, ...]:
    """The table columns of a record type: its ``table_columns``, a known set, or every field."""
    declared = getattr(record_type, "table_columns", None) or COLUMNS.get(record_type)
    return tuple(declared or (f.name for f in dataclasses.fields(record_type)))


def to_json(result: Any) -> str:
    """One JSON object for one record, a JSON list for several (the records' own field names)."""
    return json.dumps(_jsonable(result), indent=2, sort_keys=False)


def _jsonable(result: Any) -> Any:
    if isinstance(result, Record):
        return result.to_dict()
    if isinstance(result, (list, tuple)):
        return [_jsonable(item) for item in result]
    if isinstance(result, dict):
        return {k: _jsonable(v) for k, v in result.items()}
    if isinstance(result, datetime):
        return result.isoformat()
    return result


def cell(value: Any) -> str:
    """One table cell as short text."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        items = list(value.items())
        text = ", ".join(f"{k}={cell(v)}" for k, v in items[:4])
        return text + (f", +{len(items) - 4}" if len(items) > 4 else "")
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    text = " ".join(str(value).split())  # one line per row, whatever the value holds
    return text if len(text) <= 60 else text[:57] + "..."


class Result:
    """What a command returns to a face: text in a terminal, an HTML table in a notebook."""

    def __init__(self, value: Any, message: str | None = None, *, exit_code: int = 0) -> None:
        self.value = value
        self.message = message
        self.exit_code = exit_code  # non-zero: the command ran but what it ran did not succeed

    def rows(self) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
        items = self.value if isinstance(self.value, list) else [self.value]
        if not items or not isinstance(items[0], Record):
            return (), []
        columns = columns_of(type(items[0]))
        if not isinstance(self.value, list):  # one record: every field, as key/value rows
            data = items[0].to_dict()
            return ("field", "value"), [(k, cell(getattr(items[0], k, v))) for k, v in data.items()]
        return columns, [tuple(cell(getattr(item, c)) for c in columns) for item in items]

    def text(self) -> str:
        if self.value is None or (isinstance(self.value, list) and not self.value):
            return self.message or ("(none)" if isinstance(self.value, list) else "")
        if not isinstance(self.value, (Record, list)):
            return self.message or str(self.value)
        header, rows = self.rows()
        widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
        lines = ["  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        if self.message:
            lines.insert(0, self.message)
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        header, rows = self.rows()
        if not header:
            return f"<pre>{html.escape(self.text())}</pre>"
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in rows)
        caption = f"<caption>{html.escape(self.message)}</caption>" if self.message else ""
        return f'<table class="mlops-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
