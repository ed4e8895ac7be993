"""Versioned data assets: a content hash is the identity (the same content never makes a new version), each
version has a profile (rows, schema, per-column statistics), and every run that reads one is recorded."""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.records import Record
from jupyter_mlops.tables import read_table

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace


@dataclass(frozen=True)
class DatasetVersion(Record):
    name: str
    version: int
    digest: str
    path: str
    profile: dict[str, Any]
    description: str | None
    created_by: str | None
    created_at: datetime | None
    table_columns: ClassVar[tuple[str, ...]] = ("name", "version", "digest", "description", "created_at")


@dataclass(frozen=True)
class DatasetUse(Record):
    name: str
    version: int
    run_id: str
    context: str
    used_at: datetime | None


class Datasets:
    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def register(self, name: str, data: Any, *, description: str | None = None) -> DatasetVersion:
        """Register a DataFrame or a CSV/Parquet file; the same content returns the existing version."""
        import pandas as pd
        from sqlalchemy import func, select
        from sqlalchemy.exc import IntegrityError

        from jupyter_mlops.registry import current_user
        from jupyter_mlops.store.datasets import DatasetRecord

        check_name(name, "dataset")
        frame = read_table(data, "a dataset")
        if not isinstance(frame, pd.DataFrame) or frame.empty:
            raise InvalidInput("A dataset needs at least one row.")
        digest = _digest(frame)
        existing = self._find(name, digest=digest)
        if existing is not None:
            return existing
        for _attempt in range(5):  # two registrations at once: the unique constraints decide, we retry
            with self.ws.store.session() as session:
                version = (
                    session.scalar(select(func.max(DatasetRecord.version)).where(DatasetRecord.name == name)) or 0
                ) + 1
            folder = self.ws.layout.dataset(name, version)
            folder.mkdir(parents=True, exist_ok=True)
            target = folder / "data.parquet"
            frame.to_parquet(target, index=False)
            try:
                with self.ws.store.session() as session:
                    session.add(
                        DatasetRecord(
                            name=name,
                            version=version,
                            digest=digest,
                            path=str(target),
                            profile=json.dumps(profile(frame), default=str),
                            description=description,
                            created_by=current_user(),
                        )
                    )
                return self.get(name, version)
            except IntegrityError:
                found = self._find(name, digest=digest)
                if found is not None:
                    shutil.rmtree(folder, ignore_errors=True)
                    return found
        raise InvalidInput(f"Could not register {name!r}: too many concurrent registrations; try again.")

    def get(self, name: str, version: int | str | None = None) -> DatasetVersion:
        from sqlalchemy import select

        from jupyter_mlops.store.datasets import DatasetRecord

        with self.ws.store.session() as session:
            query = select(DatasetRecord).where(DatasetRecord.name == name)
            if version in (None, "latest"):
                record = session.scalar(query.order_by(DatasetRecord.version.desc()).limit(1))
            else:
                record = session.scalar(query.where(DatasetRecord.version == int(version)))
            if record is None:
                versions = session.scalars(select(DatasetRecord.version).where(DatasetRecord.name == name)).all()
                names = sorted(set(session.scalars(select(DatasetRecord.name)).all()))
                hint = f"versions: {sorted(versions)}" if versions else f"datasets: {', '.join(names) or 'none'}"
                raise NotFound(f"No dataset {name}{'' if version is None else ':' + str(version)}; {hint}.")
            return _record(record)

    def list(self) -> list[DatasetVersion]:
        from sqlalchemy import select

        from jupyter_mlops.store.datasets import DatasetRecord

        with self.ws.store.session() as session:
            rows = session.scalars(select(DatasetRecord).order_by(DatasetRecord.name, DatasetRecord.version)).all()
            return [_record(r) for r in rows]

    def load(self, name: str, version: int | str | None = None, *, context: str = "training") -> Any:
        """The data as a DataFrame; inside a job, the run is recorded as a user of this version."""
        import pandas as pd

        from jupyter_mlops.jobs import current_job
        from jupyter_mlops.store.datasets import DatasetUsageRecord

        record = self.get(name, version)
        frame = pd.read_parquet(record.path)
        job = current_job()
        if job is not None:
            job.log_dataset(frame, name=f"{name}:{record.version}", context=context, source=record.path)
            with self.ws.store.session() as session:
                session.add(DatasetUsageRecord(name=name, version=record.version, run_id=job.run_id, context=context))
        return frame

    def usage(self, name: str, version: int | None = None) -> list[DatasetUse]:
        from sqlalchemy import select

        from jupyter_mlops.store.datasets import DatasetUsageRecord

        self.get(name, version)
        with self.ws.store.session() as session:
            query = select(DatasetUsageRecord).where(DatasetUsageRecord.name == name)
            if version is not None:
                query = query.where(DatasetUsageRecord.version == int(version))
            return [
                DatasetUse(u.name, u.version, u.run_id, u.context, u.used_at)
                for u in session.scalars(query.order_by(DatasetUsageRecord.used_at))
            ]

    def _find(self, name: str, *, digest: str) -> DatasetVersion | None:
        from sqlalchemy import select

        from jupyter_mlops.store.datasets import DatasetRecord

        with self.ws.store.session() as session:
            record = session.scalar(
                select(DatasetRecord).where(DatasetRecord.name == name, DatasetRecord.digest == digest)
            )
            return _record(record) if record is not None else None


def profile(frame: Any) -> dict[str, Any]:
    """Rows, schema, and per-column statistics (pandas' describe, nulls, distinct values)."""
    columns = {}
    for column in frame.columns:
        series = frame[column]
        stats = {k: (None if v != v else v) for k, v in series.describe().to_dict().items()}  # NaN -> None
        stats.update(nulls=int(series.isna().sum()), distinct=int(series.nunique()))
        columns[str(column)] = {"dtype": str(series.dtype), **stats}
    return {"rows": len(frame), "columns": columns}


def _digest(frame: Any) -> str:
    """Content hash: column names, dtypes and every value (row order included)."""
    import pandas as pd

    digest = hashlib.sha256(json.dumps([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).values.tobytes())
    return digest.hexdigest()


def _record(record: Any) -> DatasetVersion:
    return DatasetVersion(
        name=record.name,
        version=record.version,
        digest=record.digest,
        path=record.path,
        profile=json.loads(record.profile),
        description=record.description,
        created_by=record.created_by,
        created_at=record.created_at,
    )
