"""What a step runs with: its kernel and environment, its inputs and their hashes, its cache key, its papermill job.

The runner's worker threads share one :class:`StepResolver` per run, so that an ``environment:`` is built once
however many steps (or trials) use it, and the registered datasets a step read are known when its run is recorded.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.pipelines import cache, execution
from jupyter_mlops.pipelines import notebook as notebooks

if TYPE_CHECKING:
    from jupyter_mlops.pipelines.spec import Pipeline, Step
    from jupyter_mlops.workspace import Workspace


class StepResolver:
    """Resolves steps of one pipeline run; safe to call from the runner's worker threads."""

    def __init__(self, ws: Workspace, pipeline: Pipeline) -> None:
        self.ws = ws
        self.pipeline = pipeline
        self.default_env_hash = ""  # the runner's environment, set when the run starts
        self._environments: dict[Path, tuple[str, str]] = {}
        self._datasets: dict[tuple[str, str], tuple[str, int]] = {}  # (step, input) -> registered dataset version
        self._lock = threading.Lock()

    def kernel_name(self, step: Step) -> str:
        if step.environment is not None:
            return self._environment(step)[0]
        return notebooks.kernel_name(step.notebook) or "python3"

    def env_hash(self, step: Step) -> str:
        return self._environment(step)[1] if step.environment is not None else self.default_env_hash

    def _environment(self, step: Step) -> tuple[str, str]:
        """(kernel name, environment hash) of a step's ``environment:`` spec, built on first use."""
        assert step.environment is not None
        with self._lock:
            known = self._environments.get(step.environment)
        if known is not None:
            return known
        try:
            from jupyter_mlops.environments import kernel_for
        except ImportError as exc:
            raise InvalidInput(
                f"Step {step.name!r} sets environment: {step.environment}, but this installation has no "
                "environments support (jupyter_mlops.environments); remove `environment:` to use the default kernel.",
            ) from exc
        kernel = kernel_for(step.environment, workspace=self.ws)
        content = step.environment.read_bytes() if step.environment.is_file() else b""
        digest = hashlib.sha256(kernel.encode() + b"\0" + content).hexdigest()
        with self._lock:
            self._environments[step.environment] = (kernel, digest)
        return kernel, digest

    def inputs(self, step: Step) -> dict[str, tuple[Path, str]]:
        """Input name -> (path, content hash); a missing input fails the step before anything runs."""
        found: dict[str, tuple[Path, str]] = {}
        for key, ref in step.inputs.items():
            if ref.dataset is not None:
                name, _, version = ref.dataset.partition(":")
                record = self.ws.datasets.get(name, version or None)  # NotFound names the versions there are
                with self._lock:
                    self._datasets[(step.name, key)] = (record.name, record.version)
                path = Path(record.path)
            else:
                path = self.pipeline.steps[ref.step].outputs[ref.output] if ref.step else ref.path
            assert path is not None
            if not path.exists():
                raise InvalidInput(f"Input {key!r} of step {step.name!r} is missing: {path} does not exist.")
            found[key] = (path, cache.content_hash(path))
        return found

    def datasets(self, step: Step) -> list[tuple[str, tuple[str, int]]]:
        """(input, (dataset, version)) for the registered datasets ``inputs`` found for ``step``."""
        with self._lock:
            return [(key, ref) for (name, key), ref in self._datasets.items() if name == step.name]

    def key(self, step: Step, inputs: dict[str, tuple[Path, str]]) -> str:
        env_hash = self.env_hash(step)
        return cache.step_key(
            notebook_hash=notebooks.content_hash(step.notebook),
            kernel=self.kernel_name(step),
            parameters=step.parameters,
            inputs={k: h for k, (_, h) in inputs.items()},
            outputs=list(step.outputs),
            env_hash=env_hash,
            sweep=step.sweep.model_dump(mode="json") if step.sweep is not None else None,
        )

    def job(
        self,
        step: Step,
        name: str,
        swept: dict[str, Any],
        inputs: dict[str, tuple[Path, str]],
        outputs: dict[str, Path],
    ) -> execution.Job:
        """The picklable job of one execution: the step's parameters, a trial's point, inputs and outputs as paths."""
        from jupyter_mlops.pipelines.spec import METRICS_OUTPUT

        parameters = {
            **step.parameters,
            **swept,
            **{k: str(p) for k, (p, _) in inputs.items()},
            **{k: str(p) for k, p in outputs.items()},
        }
        return execution.Job(
            name=name,
            notebook=str(step.notebook),
            parameters=parameters,
            kernel_name=self.kernel_name(step),
            outputs={k: str(p) for k, p in outputs.items()},
            folder_outputs=tuple(step.folder_outputs),
            timeout=step.timeout,
            metrics_output=METRICS_OUTPUT if step.sweep is not None else None,
        )
