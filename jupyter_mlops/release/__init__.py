"""Release gates: evaluate a candidate against the champion, approve it, and promote it under the workspace's
policy.

    result = ws.models.evaluate("churn:4", test_df, baseline="champion")   # one MLflow run, both versions' metrics
    ws.models.request_approval("churn", 4, reason="beats champion on May data")
    ws.models.approve("churn", 4, comment="looked at the confusion matrix")  # someone else, under four-eyes
    ws.models.promote("churn", 4, alias="champion", reason="May retrain")   # checked and moved in one step
    ws.models.compare("churn:3", "churn:4")   # params, metrics, data, packages, code and notebook cells

``ws.release`` is the service; ``ws.models`` reaches its verbs (:data:`VERBS`) too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from jupyter_mlops.records import Records
from jupyter_mlops.release.records import (
    APPROVAL_STATES,
    AliasMove,
    Approval,
    Evaluation,
    MetricResult,
    Promotion,
    ProtectedAlias,
)

if TYPE_CHECKING:
    from jupyter_mlops.release.comparison import Comparison
    from jupyter_mlops.workspace import Workspace

# The verbs ``ws.models`` delegates here (``ws.models.promote(...)`` is ``ws.release.promote(...)``).
VERBS = (
    "evaluate",
    "compare",
    "approval",
    "request_approval",
    "approve",
    "reject",
    "promote",
    "history",
    "policy",
    "set_policy",
)


class Release:
    """The release gates of one workspace: evaluation, approvals, the policy and promotions."""

    def __init__(self, ws: Workspace) -> None:
        self.ws = ws

    def evaluate(
        self,
        candidate: str,
        data: Any,
        *,
        baseline: str | None = "champion",
        targets: str = "label",
        thresholds: Mapping[str, Any] | None = None,
        model_type: str | None = None,
        evaluator_config: Mapping[str, Any] | None = None,
    ) -> Evaluation:
        """Score ``candidate`` (``NAME:VERSION``) and its baseline on ``data`` and gate it; see
        :func:`jupyter_mlops.release.evaluate.evaluate`."""
        from jupyter_mlops.release.evaluate import evaluate

        return evaluate(
            self.ws,
            candidate,
            data,
            baseline=baseline,
            targets=targets,
            thresholds=thresholds,
            model_type=model_type,
            evaluator_config=evaluator_config,
        )

    def compare(self, a: str, b: str, *, unchanged: bool = False) -> Comparison:
        """What differs between two versions (parameters, metrics, training data, environment, code, notebook);
        see :func:`jupyter_mlops.release.compare.compare`."""
        from jupyter_mlops.release.compare import compare

        return compare(self.ws, a, b, unchanged=unchanged)

    def approval(self, name: str, version: int | str) -> Approval:
        """The approval state of a version (``status`` None: nobody asked)."""
        from jupyter_mlops.release.approvals import approval

        return approval(self.ws, name, version)

    def request_approval(self, name: str, version: int | str, *, reason: str | None = None) -> Approval:
        """Ask for an approval: the version becomes ``PendingApproval``."""
        from jupyter_mlops.release.approvals import change

        return change(self.ws, "request", name, version, reason)

    def approve(self, name: str, version: int | str, *, comment: str | None = None) -> Approval:
        """Approve a pending version (under four-eyes, someone other than who asked)."""
        from jupyter_mlops.release.approvals import change

        return change(self.ws, "approve", name, version, comment)

    def reject(self, name: str, version: int | str, *, comment: str | None = None) -> Approval:
        """Reject a pending version, or revoke an approval (refused while it holds a protected alias)."""
        from jupyter_mlops.release.approvals import change

        return change(self.ws, "reject", name, version, comment)

    def policy(self) -> list[ProtectedAlias]:
        """The protected aliases and what each requires."""
        from jupyter_mlops.release.policy import policy

        return Records(policy(self.ws))

    def set_policy(
        self,
        *,
        protect: Iterable[str] = (),
        require: Iterable[str] | None = None,
        four_eyes: bool | None = None,
        unprotect: Iterable[str] = (),
    ) -> list[ProtectedAlias]:
        """Change the policy; see :func:`jupyter_mlops.release.policy.set_policy`."""
        from jupyter_mlops.release.policy import set_policy

        return Records(set_policy(self.ws, protect=protect, require=require, four_eyes=four_eyes, unprotect=unprotect))

    def promote(
        self, name: str, version: int | str, alias: str = "champion", *, reason: str | None = None
    ) -> Promotion:
        """Move ``alias`` to ``version`` once the policy's requirements hold (a rollback promotes the previous
        version); refused with PromotionRefused naming what is missing."""
        from jupyter_mlops.release.promote import promote

        return promote(self.ws, name, version, alias, reason=reason)

    def history(self, name: str, alias: str | None = None) -> list[AliasMove]:
        """Every move of ``alias`` (or of every alias of ``name``) with who, when and why, oldest first."""
        from jupyter_mlops.release.promote import history

        return Records(history(self.ws, name, alias))


__all__ = [
    "APPROVAL_STATES",
    "VERBS",
    "AliasMove",
    "Approval",
    "Evaluation",
    "MetricResult",
    "Promotion",
    "ProtectedAlias",
    "Release",
]
