"""The workspace's release policy: which aliases are protected, what a version needs before it may hold one (a
passed gate, an approval), and whether its approver must be someone other than who asked (four-eyes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.names import check_name
from jupyter_mlops.registry import current_user
from jupyter_mlops.release.records import REQUIREMENTS, ProtectedAlias

if TYPE_CHECKING:
    from jupyter_mlops.store.release import ProtectedAliasRecord
    from jupyter_mlops.workspace import Workspace

POLICY_GUARD = "release-policy"


def policy(ws: Workspace) -> list[ProtectedAlias]:
    """Every protected alias, by name."""
    from sqlalchemy import select

    from jupyter_mlops.store.release import ProtectedAliasRecord

    with ws.store.session() as session:
        rows = session.scalars(select(ProtectedAliasRecord).order_by(ProtectedAliasRecord.alias))
        return [_record(r) for r in rows]


def rule_for(ws: Workspace, alias: str) -> ProtectedAlias | None:
    """What ``alias`` requires; None when it is not protected."""
    return next((p for p in policy(ws) if p.alias == alias), None)


def set_policy(
    ws: Workspace,
    *,
    protect: Iterable[str] = (),
    require: Iterable[str] | None = None,
    four_eyes: bool | None = None,
    unprotect: Iterable[str] = (),
) -> list[ProtectedAlias]:
    """Protect aliases (``require`` gate and/or approval; new ones get both), stop protecting others, and turn
    four-eyes on or off for the aliases named in ``protect`` (every protected alias when none is named)."""
    from sqlalchemy import select

    from jupyter_mlops.store.release import ProtectedAliasRecord
    from jupyter_mlops.store.schema import utcnow

    protect, unprotect = [check_alias(a) for a in _names(protect)], [check_alias(a) for a in _names(unprotect)]
    needs = None if require is None else _requirements(require)
    if needs is not None and not protect:
        raise InvalidInput("Name the alias(es) the requirements are for (protect=[...], --protect ALIAS).")
    if both := sorted(set(protect) & set(unprotect)):
        raise InvalidInput(f"{', '.join(both)}: protect or unprotect, not both at once.")
    if not protect and not unprotect and four_eyes is None:
        raise InvalidInput("Nothing to change: protect or unprotect an alias, or turn four-eyes on or off.")
    user = current_user()
    with ws.store.guard(POLICY_GUARD) as session:
        rows = {r.alias: r for r in session.scalars(select(ProtectedAliasRecord))}
        gone = [a for a in unprotect if a not in rows]
        if gone:
            raise NotFound(
                f"{', '.join(gone)} {'is' if len(gone) == 1 else 'are'} not protected; protected aliases: "
                f"{', '.join(sorted(rows)) or 'none'}.",
                protected=sorted(rows),
            )
        for alias in unprotect:
            session.delete(rows.pop(alias))
        for alias in protect:
            row = rows.get(alias)
            if row is None:
                row = rows[alias] = ProtectedAliasRecord(alias=alias, require_gate=True, require_approval=True)
                row.four_eyes = False
                session.add(row)
            if needs is not None:
                row.require_gate, row.require_approval = "gate" in needs, "approval" in needs
        aimed = protect or (list(rows) if four_eyes is not None else [])
        if four_eyes is not None:
            for alias in aimed:
                rows[alias].four_eyes = four_eyes
        for alias in set(aimed):
            rows[alias].updated_by, rows[alias].updated_at = user, utcnow()
        session.flush()
        current = [_record(r) for r in sorted(rows.values(), key=lambda r: r.alias)]
    # after the commit: the event log is written in a transaction of its own
    ws.events.emit(
        "policy.changed",
        "policy",
        {"changedBy": user, "protected": [p.to_dict() for p in current], "unprotected": unprotect},
    )
    return current


def check_alias(alias: object) -> str:
    """An alias a version could hold: the name rule, and not a version number or ``latest``."""
    name = check_name(alias, "alias")
    if name.isdigit() or name == "latest":
        raise InvalidInput(f"{name!r} cannot be an alias: it reads as a version. Choose a name like 'champion'.")
    return name


def _names(aliases: Iterable[str]) -> list[str]:
    return [aliases] if isinstance(aliases, str) else list(dict.fromkeys(aliases))


def _requirements(require: Iterable[str]) -> set[str]:
    items = {r.strip() for part in ([require] if isinstance(require, str) else require) for r in part.split(",")}
    items.discard("")
    unknown = sorted(items - set(REQUIREMENTS))
    if unknown:
        raise InvalidInput(f"Unknown requirement(s) {', '.join(unknown)}: a protected alias requires {REQUIREMENTS}.")
    if not items:
        raise InvalidInput("A protected alias requires gate, approval or both; to free it, unprotect it.")
    return items


def _record(row: ProtectedAliasRecord) -> ProtectedAlias:
    from jupyter_mlops.store.schema import as_utc

    return ProtectedAlias(
        alias=row.alias,
        requires=[r for r, on in (("gate", row.require_gate), ("approval", row.require_approval)) if on],
        four_eyes=row.four_eyes,
        updated_by=row.updated_by,
        updated_at=as_utc(row.updated_at) if row.updated_at else None,
    )


__all__ = ["check_alias", "policy", "rule_for", "set_policy"]
