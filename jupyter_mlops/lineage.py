"""Lineage: where a model version, a run or a data file came from, and what used it.

Built from what the runs already record (no second bookkeeping): a model version points at its run; a pipeline
step run carries its pipeline run, notebook, commit, parameters, environment and the content hashes of its inputs
and outputs, so a file links the step that wrote it to the steps that read it; jobs carry their datasets; the
metadata store knows which deployments serve a version.
"""

from __future__ import annotations

import contextlib
import html
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput, NotFound
from jupyter_mlops.refs import FORMS, ModelRef

if TYPE_CHECKING:
    from jupyter_mlops.workspace import Workspace

INPUT_HASH, INPUT_PATH = "mlops.input.", "mlops.input_path."
OUTPUT_HASH, OUTPUT_PATH = "mlops.output.", "mlops.output_path."
_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Node:
    """One entity of the graph, with what it came from (``upstream``) and what used it (``downstream``)."""

    kind: str  # model_version | run | pipeline_run | file | dataset | deployment
    id: str
    label: str
    attrs: dict[str, Any] = field(default_factory=dict)
    upstream: list[Node] = field(default_factory=list)
    downstream: list[Node] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "attrs": self.attrs,
            "upstream": [n.to_dict() for n in self.upstream],
            "downstream": [n.to_dict() for n in self.downstream],
        }

    def to_text(self) -> str:
        lines = [self._line()]
        if self.upstream:
            lines.append("came from:")
            lines += _tree(self.upstream, "upstream", "  ")
        if self.downstream:
            lines.append("used by:")
            lines += _tree(self.downstream, "downstream", "  ")
        return "\n".join(lines)

    def _line(self) -> str:
        details = ", ".join(f"{k}={v}" for k, v in self.attrs.items() if v not in (None, "", {}, []))
        return f"{self.kind} {self.label}" + (f" ({details})" if details else "")

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:
        def items(nodes: list[Node], direction: str) -> str:
            return "".join(f"<li>{_badge(n)}<ul>{items(getattr(n, direction), direction)}</ul></li>" for n in nodes)

        return (
            '<div class="mlops-lineage">'
            f"<p>{_badge(self)}</p>"
            f"<p>⬆ came from</p><ul>{items(self.upstream, 'upstream') or '<li>nothing recorded</li>'}</ul>"
            f"<p>⬇ used by</p><ul>{items(self.downstream, 'downstream') or '<li>nothing yet</li>'}</ul></div>"
        )


def lineage(ws: Workspace, entity: str, *, depth: int = 6) -> Node:
    """The lineage of ``entity``: a model version (``churn:3``), a run id, or a data file path."""
    graph = _Graph(ws, depth)
    if _RUN_ID.match(entity):
        node = graph.run(entity, both=True)
    elif Path(entity).exists():
        node = graph.file(Path(entity).resolve(), both=True)
    elif any(mark in entity for mark in (":", "@")):
        ref = ModelRef.parse(entity)
        node = graph.model_version(ref.name, ref.selector, both=True)
    else:
        raise InvalidInput(
            f"Cannot tell what {entity!r} is: give a model version ({FORMS}), a run id, or an existing file."
        )
    return node


class _Graph:
    def __init__(self, ws: Workspace, depth: int) -> None:
        self.ws = ws
        self.depth = depth
        self._step_runs: list[Any] | None = None

    # -- nodes --------------------------------------------------------------------------------------------------
    def model_version(self, name: str, version: str, *, both: bool = False, level: int = 0) -> Node:
        record = self.ws.models.get(name, version)
        node = Node(
            "model_version",
            f"{record.name}:{record.version}",
            f"{record.name}:{record.version}",
            {"created_by": record.created_by, "description": record.description, "aliases": record.aliases},
        )
        if level < self.depth and record.run_id:
            with contextlib.suppress(NotFound):
                node.upstream.append(self.run(record.run_id, level=level + 1))
        if both or level == 0:
            node.downstream += [
                Node("deployment", d, d) for d in self.ws.models.deployments_using(record.name, record.version)
            ]
        return node

    def run(self, run_id: str, *, both: bool = False, level: int = 0, direction: str = "up") -> Node:
        from jupyter_mlops import _mlflow

        with _mlflow.translated_errors(f"run {run_id!r}"):
            run = self.ws.client.get_run(run_id)
        tags, params = run.data.tags, run.data.params
        node = Node(
            "run",
            run_id,
            f"{run.info.run_name} [{run_id[:8]}]",
            {
                "status": run.info.status,
                "step": tags.get("mlops.step.name"),
                "pipeline": tags.get("mlops.pipeline"),
                "notebook": tags.get("mlflow.source.name"),
                "commit": (tags.get("mlflow.source.git.commit") or "")[:12],
                "environment": (tags.get("mlops.env_hash") or "")[:12],
                "parameters": dict(params),
            },
        )
        if level >= self.depth:
            return node
        if direction == "up" or both:
            parent = tags.get("mlflow.parentRunId")
            if parent:
                parent_run = self.ws.client.get_run(parent)
                node.upstream.append(
                    Node(
                        "pipeline_run" if parent_run.data.tags.get("mlops.kind") == "pipeline-run" else "run",
                        parent,
                        f"{parent_run.info.run_name} [{parent[:8]}]",
                        {"pipeline_version": (parent_run.data.tags.get("mlops.pipeline.version") or "")[:12]},
                    )
                )
            for name, digest in _with_prefix(tags, INPUT_HASH).items():
                path = tags.get(INPUT_PATH + name, name)
                file = Node("file", digest, path, {"input": name, "sha256": digest[:12]})
                file.upstream += [self.run(r.info.run_id, level=level + 1) for r in self._producers(digest)]
                node.upstream.append(file)
            for dataset in run.inputs.dataset_inputs if run.inputs else []:
                node.upstream.append(
                    Node("dataset", dataset.dataset.digest, dataset.dataset.name, {"digest": dataset.dataset.digest})
                )
        if direction == "down" or both:
            for version in self.ws.client.search_model_versions(f"run_id = '{run_id}'"):
                node.downstream.append(self.model_version(version.name, version.version, level=self.depth))
            for name, digest in _with_prefix(tags, OUTPUT_HASH).items():
                consumers = [r for r in self._consumers(digest) if r.info.run_id != run_id]
                if consumers:
                    file = Node("file", digest, tags.get(OUTPUT_PATH + name, name), {"output": name})
                    file.downstream += [self.run(r.info.run_id, level=level + 1, direction="down") for r in consumers]
                    node.downstream.append(file)
        return node

    def file(self, path: Path, *, both: bool = False) -> Node:
        from jupyter_mlops.pipelines.cache import content_hash

        digest = content_hash(path)
        node = Node("file", digest, str(path), {"sha256": digest[:12]})
        node.upstream += [self.run(r.info.run_id, level=1) for r in self._producers(digest)]
        node.downstream += [self.run(r.info.run_id, level=1, direction="down") for r in self._consumers(digest)]
        return node

    # -- queries ------------------------------------------------------------------------------------------------
    def _all_step_runs(self) -> list[Any]:
        """Every pipeline step run (the only runs that record input and output hashes)."""
        if self._step_runs is None:
            client = self.ws.client
            experiments = [e.experiment_id for e in client.search_experiments()]
            self._step_runs = list(
                client.search_runs(experiments, filter_string="tags.`mlops.kind` = 'pipeline-step'", max_results=5000)
            )
        return self._step_runs

    def _producers(self, digest: str) -> list[Any]:
        runs = [r for r in self._all_step_runs() if digest in _with_prefix(r.data.tags, OUTPUT_HASH).values()]
        return _unique_originals(runs)

    def _consumers(self, digest: str) -> list[Any]:
        runs = [r for r in self._all_step_runs() if digest in _with_prefix(r.data.tags, INPUT_HASH).values()]
        return _unique_originals(runs)


def _unique_originals(runs: list[Any]) -> list[Any]:
    """Reused steps point at the run that really executed: show that one, once."""
    seen, kept = set(), []
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        key = run.data.tags.get("mlops.step.reused_from") or run.info.run_id
        if key not in seen:
            seen.add(key)
            kept.append(run)
    return kept


def _with_prefix(tags: dict[str, str], prefix: str) -> dict[str, str]:
    return {k[len(prefix) :]: v for k, v in tags.items() if k.startswith(prefix) and v}


def _tree(nodes: list[Node], direction: str, indent: str) -> list[str]:
    lines = []
    for node in nodes:
        lines.append(f"{indent}- {node._line()}")
        lines += _tree(getattr(node, direction), direction, indent + "    ")
    return lines


def _badge(node: Node) -> str:
    details = ", ".join(f"{k}={v}" for k, v in node.attrs.items() if v not in (None, "", {}, []))
    return f"<b>{html.escape(node.kind)}</b> <code>{html.escape(node.label)}</code>" + (
        f' <span style="color:var(--jp-ui-font-color2,#666)">{html.escape(details)}</span>' if details else ""
    )
