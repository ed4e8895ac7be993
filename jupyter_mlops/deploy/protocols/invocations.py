"""MLflow's scoring protocol, as ``mlflow models serve`` speaks it: ``POST /invocations``, ``GET /ping``,
``GET /version``.

Bodies in ``application/json`` (``dataframe_split``, ``dataframe_records``, ``instances``, ``inputs``; ``params``
allowed), ``text/csv`` (a header line, then rows, read as pandas reads them) and
``application/vnd.apache.parquet``; the charset may only be UTF-8 and no other Content-Type parameter is taken.
Answers are ``{"predictions": ...}``; refusals are MLflow's: a Content-Type it does not read is a 415 in plain text,
anything else ``{"error_code": "BAD_REQUEST", "message": ...}`` (the error code of the status, as MLflow names it).
A CSV or Parquet body, and MLflow's column-oriented ``{"inputs": {"column": [...]}}`` and row objects under
``instances`` or ``inputs``, are translated into ``dataframe_split``/``dataframe_records`` before scoring.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import partial
from typing import TYPE_CHECKING, Any

from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from jupyter_mlops.deploy.protocols.wire import Translated, Wire
from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    from starlette.requests import Request

    from jupyter_mlops.deploy.app import ScoringApp, Served

CSV, JSON, PARQUET = "text/csv", "application/json", "application/vnd.apache.parquet"
CONTENT_TYPES = [CSV, JSON, PARQUET]  # in MLflow's order: its 415 lists them so
# MLflow's error codes by HTTP status (mlflow.exceptions); a status it has no code for is a BAD_REQUEST
ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "RESOURCE_DOES_NOT_EXIST",
    409: "RESOURCE_CONFLICT",
    429: "REQUEST_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    501: "NOT_IMPLEMENTED",
    503: "TEMPORARILY_UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
# pandas.read_csv's default missing values and booleans
NA = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"}
NA |= {"NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
TRUE, FALSE = {"True", "TRUE", "true"}, {"False", "FALSE", "false"}
INTEGER = re.compile(r"[+-]?\d+")
FLOAT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?|[+-]?(inf|Inf|INF|infinity|Infinity)")
REWRITE = re.compile(rb'"(inputs|instances)"\s*:\s*(\{|\[\s*\{)')  # may need a rewrite: parse to be sure


class InvocationsWire(Wire):
    def refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        if status == 415:  # as MLflow: a Content-Type it does not read is answered in plain text
            return PlainTextResponse(message, status_code=415, headers=headers or None)
        code = ERROR_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "BAD_REQUEST")
        body = json.dumps({"error_code": code, "message": message})  # MLflow's separators, as it serializes
        return Response(body, status_code=status, headers=headers or None, media_type="application/json")

    def unsupported(self, content_type: str | None, served: Served) -> str | None:
        parts = [part.strip() for part in (content_type or "").split(";")]
        parameters = {key: value for key, _, value in (pair.partition("=") for pair in parts[1:])}
        if parameters.get("charset", "utf-8").lower() != "utf-8":
            return "The scoring server only supports UTF-8"
        unexpected = sorted(set(parameters) - {"charset"})
        if unexpected:
            return (
                f"Unrecognized content type parameters: {', '.join(unexpected)}. Send 'application/json' (with "
                "the format as the body's key: dataframe_split, dataframe_records, instances or inputs), "
                "'text/csv' or 'application/vnd.apache.parquet'."
            )
        if parts[0] not in CONTENT_TYPES:
            types = f"Types: {CONTENT_TYPES}. Got '{content_type}'."
            return f"This predictor only supports the following content types: {types}"
        return None

    async def translate(self, body: bytes, request: Request, served: Served) -> Translated:
        """A CSV table, or JSON that needed rewriting, was parsed here: a scorer in this process takes that payload
        as it is (its body is written when something reads it); other bodies pass as they came."""
        mime = (request.headers.get("content-type") or "").split(";", 1)[0].strip()
        if mime == PARQUET:
            return Translated(parquet_body(body), JSON)
        payload: dict[str, Any] | None
        if mime == CSV:
            payload, booleans = csv_payload(body), True
        else:
            payload, booleans = rewritten(body), b"true" in body or b"false" in body
            if payload is None:
                return Translated(body, JSON)
        if served.scorer is not None and served.scorer.takes_payload:
            return Translated(None, JSON, payload=payload, encode=partial(_encoded, payload), booleans=booleans)
        return Translated(_encoded(payload), JSON)


def _encoded(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


WIRE = InvocationsWire()


def rewritten(body: bytes) -> dict[str, Any] | None:
    """``/score``'s payload for a JSON body that holds MLflow's column-oriented ``inputs`` (an object of columns)
    or row objects under ``instances``, which become ``dataframe_split`` / ``dataframe_records``; None when the
    body passes as it came."""
    if not REWRITE.search(body):
        return None
    from jupyter_mlops.deploy.scoring import parse_json

    payload = parse_json(body)
    if not isinstance(payload, dict):
        return None
    inputs, instances = payload.get("inputs"), payload.get("instances")
    if isinstance(inputs, dict) and inputs and "instances" not in payload:
        columns = {name: value if isinstance(value, list) else [value] for name, value in inputs.items()}
        lengths = {len(value) for value in columns.values()}
        if len(lengths) != 1:
            raise InvalidInput(f"The columns under inputs have different lengths: {sorted(lengths)}.")
        data = [list(row) for row in zip(*columns.values(), strict=True)]
        rest = {k: v for k, v in payload.items() if k != "inputs"}
        return {**rest, "dataframe_split": {"columns": list(columns), "data": data}}
    for key, rows in (("instances", instances), ("inputs", inputs)):
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            if ("inputs" if key == "instances" else "instances") in payload:
                return None  # two formats: /score names the problem
            rest = {k: v for k, v in payload.items() if k != key}
            return {**rest, "dataframe_records": rows}
    return None


def csv_payload(body: bytes) -> dict[str, Any]:
    """A CSV table (a header line, then one line per row) as ``dataframe_split``, its values read as pandas reads
    them: a column of numbers holds numbers (floats when one of them is), of True/False booleans, any other column
    text; pandas' missing-value markers (empty, NA, NaN, null, ...) are missing."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"Ensure that input is a valid UTF-8 encoded string. Error: '{exc!r}'") from exc
    try:
        lines = [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as exc:
        raise InvalidInput(f"The body is not CSV: {exc}.") from exc
    if not lines:
        raise InvalidInput("The CSV body is empty: send a header line naming the columns, then one line per row.")
    header, rows = lines[0], lines[1:]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InvalidInput(f"Line {number} of the CSV has {len(row)} values; its header names {len(header)}.")
    try:
        columns = [_column([row[i] for row in rows]) for i in range(len(header))]
    except ValueError as exc:  # an integer longer than Python converts (4,300 digits)
        raise InvalidInput(f"The CSV holds a value that is not read as a number: {exc}."[:500]) from exc
    data = [list(values) for values in zip(*columns, strict=True)] if rows else []
    if not data:
        raise InvalidInput("The CSV body has a header but no rows: send one line per row after it.")
    return {"dataframe_split": {"columns": header, "data": data}}


def _column(cells: list[str]) -> list[Any]:
    present = [c for c in cells if c not in NA]
    if present and all(c in TRUE or c in FALSE for c in present):
        return [None if c in NA else c in TRUE for c in cells]
    if all(INTEGER.fullmatch(c) for c in present):
        return [None if c in NA else int(c) for c in cells]
    if all(INTEGER.fullmatch(c) or FLOAT.fullmatch(c) for c in present):
        return [None if c in NA else float(c) for c in cells]
    return [None if c in NA else c for c in cells]


def parquet_body(body: bytes) -> bytes:
    """A Parquet table as ``dataframe_split`` (pandas reads it: pyarrow or fastparquet must be installed)."""
    try:
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(body))
    except ImportError as exc:
        raise InvalidInput(f"Reading Parquet needs pyarrow (pip install pyarrow): {exc}.") from exc
    except Exception as exc:  # whatever the reader makes of bytes that are not Parquet
        raise InvalidInput(f"The body is not a Parquet table: {type(exc).__name__}: {exc}"[:500]) from exc
    split = frame.to_json(orient="split", index=False, date_format="iso")
    return b'{"dataframe_split": ' + split.encode() + b"}"


def routes(service: ScoringApp) -> list[Route]:
    """MLflow's scoring server routes, served by ``service``; ``POST /invocations`` first."""

    async def invocations(request: Request) -> Response:
        return await service.handle(request, WIRE)

    async def ping(_: Request) -> Response:
        if service.table.version == 0:
            return WIRE.refuse(503, "Loading the deployments.")
        return Response("\n", media_type="application/json")

    async def version(_: Request) -> Response:
        return Response(mlflow_version(), media_type="application/json")

    return [
        Route("/invocations", invocations, methods=["POST"]),
        Route("/ping", ping, methods=["GET"]),
        Route("/version", version, methods=["GET"]),
    ]


def mlflow_version() -> str:
    """The MLflow version this server speaks the protocol of (installed, else the one this package was made with)."""
    from importlib.metadata import PackageNotFoundError, version

    for name in ("mlflow", "mlflow-skinny"):
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return "3"
