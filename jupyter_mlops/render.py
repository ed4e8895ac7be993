"""Render API results for people (text tables, HTML tables in a notebook) and for scripts (JSON)."""

from __future__ import annotations

import dataclasses
import html
import json
import re
from datetime import datetime, timezone
from typing import Any

from jupyter_mlops.records import ModelVersion, Record, RegisteredModel, Run

_ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")
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


def local_time(value: datetime) -> str:
    """A timestamp in the reader's own time zone (naive ones are UTC, as the stores keep them)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _as_time(value: Any) -> datetime | None:
    """An ISO 8601 timestamp string (as nested records keep them) read back, else None."""
    if isinstance(value, str) and _ISO.match(value):
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def cell(value: Any) -> str:
    """One table cell as short text."""
    if value is None:
        return ""
    parsed = value if isinstance(value, datetime) else _as_time(value)
    if parsed is not None:
        return local_time(parsed)
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, Record):
        return cell(value.to_dict())
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if v is not None]
        text = ", ".join(f"{k}={cell(v)}" for k, v in items[:4])
        return text + (f", +{len(items) - 4}" if len(items) > 4 else "")
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, (dict, Record)) for v in value):
            return (
                f"{len(value)} item(s): " + "; ".join(cell(v) for v in value[:2]) + ("; ..." if len(value) > 2 else "")
            )
        return ", ".join(cell(v) for v in value)
    text = " ".join(str(value).split())  # one line per row, whatever the value holds
    return text if len(text) <= 60 else text[:57] + "..."


def html_value(value: Any) -> str:
    """One value as HTML: nested records, dicts and lists of them as sub-tables, timestamps in local time."""
    if isinstance(value, Record):
        value = {k: getattr(value, k, v) for k, v in value.to_dict().items()}
    if isinstance(value, dict) and value and all(isinstance(v, (str, int, float, bool)) for v in value.values()):
        return html.escape(", ".join(f"{k}={cell(v)}" for k, v in value.items()))  # tags and figures: k=v
    if isinstance(value, dict) and value:
        rows = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html_value(v)}</td></tr>" for k, v in value.items())
        return f'<table class="mlops-sub">{rows}</table>'
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (dict, Record)) for v in value):
        items = [v.to_dict() if isinstance(v, Record) else v for v in value]
        keys = list(dict.fromkeys(k for item in items for k in item))
        head = "".join(f"<th>{html.escape(str(k))}</th>" for k in keys)
        body = "".join(
            "<tr>" + "".join(f"<td>{html_value(item.get(k))}</td>" for k in keys) + "</tr>" for item in items
        )
        return f'<table class="mlops-sub"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    return html.escape(cell(value))


def card_html(record: Record) -> str:
    """One record as a compact card: a heading and its fields, nested ones as sub-tables."""
    fields = {k: getattr(record, k, v) for k, v in record.to_dict().items()}
    title = html.escape(type(record).__name__)
    rows = "".join(
        f"<tr><th>{html.escape(k)}</th><td>{html_value(v)}</td></tr>"
        for k, v in fields.items()
        if v not in (None, [], {})
    )
    return f'<table class="mlops-card"><caption>{title}</caption><tbody>{rows}</tbody></table>'


def card_text(record: Record) -> str:
    """One record as aligned ``field  value`` lines for a terminal; nested lists one item per line."""
    fields = {k: getattr(record, k, v) for k, v in record.to_dict().items() if v not in (None, [], {})}
    width = max((len(k) for k in fields), default=0)
    lines = [type(record).__name__]
    for key, value in fields.items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, (dict, Record)) for v in value):
            lines.append(f"  {key.ljust(width)}")
            lines += [f"  {'':{width}}  - {cell(item)}" for item in value]
        else:
            lines.append(f"  {key.ljust(width)}  {cell(value)}")
    return "\n".join(lines)


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
        header, _ = self.rows()
        if not header:
            return f"<pre>{html.escape(self.text())}</pre>"
        if isinstance(self.value, Record):
            return card_html(self.value)
        items = self.value if isinstance(self.value, list) else [self.value]
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join(
            "<tr>" + "".join(f"<td>{html_value(getattr(item, c))}</td>" for c in header) + "</tr>" for item in items
        )
        caption = f"<caption>{html.escape(self.message)}</caption>" if self.message else ""
        return f'<table class="mlops-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
