"""Reading a table that a user names: a DataFrame as given, or a CSV or Parquet file, with one error that names
the file and what it should be (datasets, evaluation data, samples for ONNX proofs all read through here)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

PARQUET_SUFFIXES = (".parquet", ".pq")
CSV_SUFFIXES = (".csv", ".txt")


def read_table(data: Any, what: str = "table") -> pd.DataFrame:
    """``data`` as a DataFrame; ``what`` names it in errors ("the evaluation data", "the sample")."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if not isinstance(data, (str, os.PathLike)):
        raise InvalidInput(
            f"{what.capitalize()} is a pandas DataFrame or a CSV/Parquet file, not {type(data).__name__}."
        )
    path = Path(data).expanduser()
    if not path.is_file():
        raise InvalidInput(f"{path} does not exist: name a CSV or Parquet file for {what}.", path=str(path))
    suffix = path.suffix.lower()
    if suffix not in PARQUET_SUFFIXES + CSV_SUFFIXES:
        raise InvalidInput(f"Cannot read {path} as {what}: use a .csv or .parquet file.", path=str(path))
    try:
        return pd.read_parquet(path) if suffix in PARQUET_SUFFIXES else pd.read_csv(path)
    except Exception as exc:
        raise InvalidInput(f"Cannot read {path} as {what}: {exc}", path=str(path)) from exc
