"""The pipeline spec: ``pipeline.yaml`` read with line numbers, checked against a schema and against the notebooks.

Every error is an :class:`~jupyter_mlops.exceptions.InvalidInput` that names the file, the line and the key, so a
user can jump straight to what is wrong. Relative paths are relative to the spec file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.release.thresholds import Threshold, parse_thresholds

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
PIPELINE_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
_TEMPLATE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class RegisterSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    output: str | None = None
    tags: dict[str, str] = {}


class EarlyStopSpec(BaseModel):
    """Stop launching trials once the best metric reaches ``target``, or after ``patience`` trials without gain."""

    model_config = ConfigDict(extra="forbid")
    target: float | None = None
    patience: int | None = Field(None, ge=1)


class SweepSpec(BaseModel):
    """Hyperparameter sweep of a step: each trial runs the notebook with one point of ``parameters``."""

    model_config = ConfigDict(extra="forbid")
    parameters: dict[str, Any] = Field(min_length=1)  # NAME: [values] or NAME: {min, max} (checked in _sweep)
    sampling: Literal["grid", "random"] = "grid"
    max_trials: int | None = Field(None, ge=1)
    metric: str
    goal: Literal["maximize", "minimize"] = "maximize"
    max_parallel: int = Field(1, ge=1, le=64)
    seed: int = 0
    early_stop: EarlyStopSpec | None = None


class GateSpec(BaseModel):
    """A step's gate: limits on the figures of its ``metrics`` output (MLflow ``MetricThreshold`` options), absolute
    or against the version of ``model`` holding the ``baseline`` alias (null: thresholds only)."""

    model_config = ConfigDict(extra="forbid")
    thresholds: dict[str, Any] = Field(min_length=1)
    model: str | None = None  # default: the model the step or an upstream step registers
    baseline: str | None = "champion"


class StepSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    notebook: str
    parameters: dict[str, Any] = {}
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}
    environment: str | None = None
    retries: int = Field(0, ge=0, le=10)
    timeout: float | None = Field(None, gt=0)
    register_: RegisterSpec | None = Field(None, alias="register")  # `register` would shadow BaseModel's
    sweep: SweepSpec | None = None
    gate: GateSpec | None = None

    @field_validator("parameters", "inputs", "outputs")
    @classmethod
    def _identifiers(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key in value:
            if not re.match(NAME_PATTERN, str(key)):
                raise ValueError(f"{key!r} is not a valid notebook parameter name (letters, digits, underscores)")
        return value


class PipelineSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=PIPELINE_NAME_PATTERN)
    description: str | None = None
    parameters: dict[str, Any] = {}
    environment: str | None = None
    steps: dict[str, StepSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Input:
    """A resolved step input: another step's output (``step``, ``output``), a path, or a registered dataset
    (``dataset``: ``NAME`` or ``NAME:VERSION``, resolved when the step runs)."""

    name: str
    step: str | None = None
    output: str | None = None
    path: Path | None = None
    dataset: str | None = None


@dataclass(frozen=True)
class Gate:
    """A resolved gate: its rules, the model its candidate and baseline are versions of, and the baseline alias."""

    rules: dict[str, Threshold]
    model: str | None
    baseline: str | None


@dataclass(frozen=True)
class Step:
    name: str
    notebook: Path
    parameters: dict[str, Any]  # after ${...} substitution
    inputs: dict[str, Input]
    outputs: dict[str, Path]
    folder_outputs: frozenset[str]  # outputs written as ``path/`` in the spec: folders
    environment: Path | None
    retries: int
    timeout: float | None
    register: RegisterSpec | None
    depends_on: tuple[str, ...]
    sweep: SweepSpec | None = None
    gate: Gate | None = None


@dataclass
class Pipeline:
    """A validated pipeline: the spec as written (``text``), its folder, and its steps (in the spec's order)."""

    name: str
    path: Path
    text: str
    parameters: dict[str, Any]
    steps: dict[str, Step] = field(default_factory=dict)

    @property
    def folder(self) -> Path:
        return self.path.parent

    @property
    def version(self) -> str:
        """The spec's content hash: the pipeline version a run records."""
        return hashlib.sha256(self.text.encode()).hexdigest()[:12]

    def downstream(self, name: str) -> set[str]:
        """``name`` and every step that depends on it, directly or not."""
        found = {name}
        changed = True
        while changed:
            changed = False
            for step in self.steps.values():
                if step.name not in found and found.intersection(step.depends_on):
                    found.add(step.name)
                    changed = True
        return found

    def upstream(self, name: str) -> set[str]:
        """Every step ``name`` depends on, directly or not (without ``name``)."""
        found: set[str] = set()
        todo = list(self.steps[name].depends_on)
        while todo:
            current = todo.pop()
            if current not in found:
                found.add(current)
                todo.extend(self.steps[current].depends_on)
        return found


def _loader() -> Any:
    """PyYAML's safe loader, in C when libyaml is there (planning a 50-step spec spends most of its time here)."""
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _Positions:
    """Line numbers (1-based) of the keys of a YAML document, by key path."""

    def __init__(self, text: str) -> None:
        import yaml

        self.lines: dict[tuple[str, ...], int] = {}
        try:
            node = yaml.compose(text, Loader=_loader())
        except yaml.YAMLError:
            return
        if node is not None:
            self._walk(node, ())

    def _walk(self, node: Any, path: tuple[str, ...]) -> None:
        import yaml

        self.lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                child = (*path, str(key.value))
                self.lines[child] = key.start_mark.line + 1
                self._walk(value, child)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, (*path, str(index)))

    def line(self, path: tuple[Any, ...]) -> int | None:
        keys = tuple(str(p) for p in path)
        while keys:
            if keys in self.lines:
                return self.lines[keys]
            keys = keys[:-1]
        return self.lines.get(())


def spec_error(path: Path, line: int | None, key: str, message: str) -> InvalidInput:
    where = f"{path}:{line}" if line else str(path)
    return InvalidInput(f"{where}: {key}: {message}", file=str(path), line=line, key=key)


def load(
    path: str | Path,
    *,
    parameters: dict[str, Any] | None = None,
    text: str | None = None,
    folder: Path | None = None,
) -> Pipeline:
    """Read and validate a spec file, with ``parameters`` overriding its defaults.

    ``text`` and ``folder`` replay a stored spec as if it were still in ``folder`` (resume, clone).
    """
    import yaml

    source = Path(path).expanduser()
    if text is None:
        if not source.is_file():
            raise InvalidInput(f"No pipeline spec at {source}: pass the path of a pipeline.yaml.", path=str(source))
        text = source.read_text()
    spec_path = ((folder or source.parent) / source.name).resolve()
    positions = _Positions(text)
    try:
        data = yaml.load(text, Loader=_loader())  # a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise spec_error(spec_path, mark.line + 1 if mark else None, "(yaml)", f"not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise spec_error(spec_path, 1, "(top)", "a pipeline spec is a mapping with `name` and `steps`")
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        # an unknown key first: a misspelt key also shows up as a missing one
        first = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")[0]
        loc = tuple(first["loc"])
        key = ".".join(str(p) for p in loc) or "(top)"
        hint = ""
        if first["type"] == "extra_forbidden":
            hint = f"; allowed keys: {', '.join(_allowed_keys(loc))}"
        raise spec_error(spec_path, positions.line(loc), key, first["msg"] + hint) from exc
    unknown = sorted(set(parameters or {}) - set(spec.parameters))
    if unknown:
        raise spec_error(
            spec_path,
            positions.line(("parameters",)),
            "parameters",
            f"{', '.join(unknown)} is not a parameter of pipeline {spec.name!r}; "
            f"its parameters: {', '.join(spec.parameters) or 'none'}",
        )
    spec.parameters.update(parameters or {})
    return _resolve(spec, spec_path, text, positions)


def _allowed_keys(loc: tuple[Any, ...]) -> list[str]:
    if len(loc) >= 3 and loc[0] == "steps" and loc[-2] == "register":
        return list(RegisterSpec.model_fields)
    if len(loc) >= 4 and loc[0] == "steps" and loc[-2] == "early_stop":
        return list(EarlyStopSpec.model_fields)
    if len(loc) >= 3 and loc[0] == "steps" and loc[-2] == "sweep":
        return list(SweepSpec.model_fields)
    if len(loc) >= 3 and loc[0] == "steps" and loc[-2] == "gate":
        return list(GateSpec.model_fields)
    if len(loc) >= 3 and loc[0] == "steps":
        return [f.alias or name for name, f in StepSpec.model_fields.items()]
    return list(PipelineSpec.model_fields)


def _resolve(spec: PipelineSpec, spec_path: Path, text: str, positions: _Positions) -> Pipeline:
    from graphlib import CycleError, TopologicalSorter

    from jupyter_mlops.pipelines.notebook import declared_parameters

    folder = spec_path.parent
    pipeline = Pipeline(name=spec.name, path=spec_path, text=text, parameters=dict(spec.parameters))
    resolved: dict[str, Step] = {}
    for name, step in spec.steps.items():
        where = ("steps", name)
        if not re.match(NAME_PATTERN, name):
            raise spec_error(spec_path, positions.line(where), f"steps.{name}", "a step name is a Python identifier")
        notebook = (folder / step.notebook).resolve()
        if not notebook.is_file():
            raise spec_error(
                spec_path,
                positions.line((*where, "notebook")),
                f"steps.{name}.notebook",
                f"the notebook {notebook} does not exist (paths are relative to the spec file)",
            )
        parameters = {
            key: substitute(
                value,
                spec.parameters,
                spec_path,
                positions.line((*where, "parameters", key)),
                f"steps.{name}.parameters.{key}",
            )
            for key, value in step.parameters.items()
        }
        inputs: dict[str, Input] = {}
        for key, ref in step.inputs.items():
            inputs[key] = _input(key, ref, spec, folder, spec_path, positions.line((*where, "inputs", key)), name)
        outputs = {key: (folder / value).resolve() for key, value in step.outputs.items()}
        environment = step.environment or spec.environment
        clashes = (set(parameters) & set(inputs)) | (set(parameters) & set(outputs)) | (set(inputs) & set(outputs))
        if clashes:
            raise spec_error(
                spec_path,
                positions.line(where),
                f"steps.{name}",
                f"{', '.join(sorted(clashes))} is used twice among parameters, inputs and outputs",
            )
        if step.register_ is not None:
            target = step.register_.output or (next(iter(outputs)) if len(outputs) == 1 else None)
            if target not in outputs:
                raise spec_error(
                    spec_path,
                    positions.line((*where, "register")),
                    f"steps.{name}.register",
                    f"name the output to register with `output:` (one of: {', '.join(outputs) or 'none'})",
                )
        declared = declared_parameters(notebook)
        passed = [*parameters, *inputs, *outputs]
        if passed and declared is None:
            raise spec_error(
                spec_path,
                positions.line((*where, "notebook")),
                f"steps.{name}.notebook",
                f"{notebook.name} has no cell tagged `parameters`, but the step passes {', '.join(passed)}: "
                "tag the cell that sets their defaults with `parameters`",
            )
        unknown = [p for p in passed if p not in (declared or ())]
        if unknown:
            section = next(s for s in ("parameters", "inputs", "outputs") if unknown[0] in getattr(step, s))
            raise spec_error(
                spec_path,
                positions.line((*where, section, unknown[0])),
                f"steps.{name}.{section}.{unknown[0]}",
                f"{notebook.name} does not declare {', '.join(unknown)} in its `parameters` cell; "
                f"it declares: {', '.join(declared or ()) or 'nothing'}",
            )
        if step.sweep is not None:
            _check_sweep(step.sweep, name, step, declared or [], spec_path, positions)
        resolved[name] = Step(
            name=name,
            notebook=notebook,
            parameters=parameters,
            inputs=inputs,
            outputs=outputs,
            folder_outputs=frozenset(k for k, v in step.outputs.items() if v.endswith(("/", "\\"))),
            environment=(folder / environment).resolve() if environment else None,
            retries=step.retries,
            timeout=step.timeout,
            register=step.register_,
            depends_on=tuple(sorted({i.step for i in inputs.values() if i.step})),
            sweep=step.sweep,
        )
    graph = {name: set(step.depends_on) for name, step in resolved.items()}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as exc:
        cycle = exc.args[1]
        raise spec_error(
            spec_path,
            positions.line(("steps", cycle[0], "inputs")),
            f"steps.{cycle[0]}.inputs",
            f"the steps form a cycle: {' -> '.join(cycle)}; a step cannot use its own outputs, directly or not",
        ) from exc
    pipeline.steps = resolved  # in the spec's order; the runner follows the dependencies
    for name, step in spec.steps.items():
        if step.gate is not None:
            gate = _gate(pipeline, name, step, spec_path, positions)
            pipeline.steps[name] = dataclasses.replace(pipeline.steps[name], gate=gate)
    return pipeline


METRICS_OUTPUT = "metrics"  # the output a sweep reads its metric from: a JSON object the notebook writes


def _check_sweep(
    sweep: SweepSpec, name: str, step: StepSpec, declared: list[str], spec_path: Path, positions: _Positions
) -> None:
    where = ("steps", name, "sweep")

    def error(keys: tuple[str, ...], message: str) -> InvalidInput:
        return spec_error(spec_path, positions.line((*where, *keys)), ".".join((*where, *keys)), message)

    for key, values in sweep.parameters.items():
        if not re.match(NAME_PATTERN, str(key)):
            raise error(("parameters", key), f"{key!r} is not a valid notebook parameter name")
        if key in step.inputs or key in step.outputs:
            raise error(("parameters", key), f"{key} is an input or output of the step, it cannot be swept")
        if key not in declared:
            raise error(
                ("parameters", key),
                f"{Path(step.notebook).name} does not declare {key} in its `parameters` cell; "
                f"it declares: {', '.join(declared) or 'nothing'}",
            )
        if isinstance(values, list):
            if not values:
                raise error(("parameters", key), "list at least one value to try")
            continue
        bounds = values if isinstance(values, dict) else {}
        numbers = [bounds.get(k) for k in ("min", "max")]
        if set(bounds) != {"min", "max"} or not all(
            isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers
        ):
            raise error(("parameters", key), "give a list of values or a range {min: NUMBER, max: NUMBER}")
        if numbers[0] > numbers[1]:  # type: ignore[operator]
            raise error(("parameters", key), f"min ({numbers[0]}) is greater than max ({numbers[1]})")
        if sweep.sampling == "grid":
            raise error(
                ("parameters", key),
                "a range {min, max} has no grid: list the values to try, or use sampling: random",
            )
    if sweep.sampling == "random" and sweep.max_trials is None:
        raise error(("sampling",), "random sampling needs max_trials: how many points to draw")
    if METRICS_OUTPUT not in step.outputs:
        raise error(
            ("metric",),
            f"a sweep reads {sweep.metric!r} from the step's `{METRICS_OUTPUT}` output, a JSON object the notebook "
            f"writes (e.g. outputs: {{{METRICS_OUTPUT}: metrics.json}}); declare that output",
        )
    if sweep.early_stop is not None and sweep.early_stop.target is None and sweep.early_stop.patience is None:
        raise error(("early_stop",), "set target (a metric value to reach), patience (trials without gain), or both")


def _gate(pipeline: Pipeline, name: str, step: StepSpec, spec_path: Path, positions: _Positions) -> Gate:
    """Check a step's ``gate:`` against the steps: a metrics output to read, rules MLflow understands, and the model
    whose versions are compared (named, or the only one this step and its upstream steps register)."""
    assert step.gate is not None
    where = ("steps", name, "gate")

    def error(keys: tuple[str, ...], message: str) -> InvalidInput:
        return spec_error(spec_path, positions.line((*where, *keys)), ".".join((*where, *keys)), message)

    if METRICS_OUTPUT not in step.outputs:
        raise error(
            (),
            f"a gate reads its figures from the step's `{METRICS_OUTPUT}` output, a JSON object the notebook writes "
            f"(e.g. outputs: {{{METRICS_OUTPUT}: metrics.json}}); declare that output",
        )
    try:
        rules = parse_thresholds(step.gate.thresholds)
    except InvalidInput as exc:
        raise error(("thresholds",), str(exc)) from exc
    model = step.gate.model
    if model is None:
        registered = sorted(
            {s.register.name for s in (pipeline.steps[n] for n in {name, *pipeline.upstream(name)}) if s.register}
        )
        if len(registered) > 1:
            raise error((), f"several models are registered upstream ({', '.join(registered)}): name one as `model:`")
        model = registered[0] if registered else None
    wants_baseline = any(r.min_absolute_change is not None or r.min_relative_change is not None for r in rules.values())
    if model is None and step.gate.baseline is not None and wants_baseline:
        raise error(
            (),
            f"comparing with the {step.gate.baseline} needs a model: register one in an upstream step or name it as "
            "`model:` (or set `baseline: null` and use absolute thresholds only)",
        )
    return Gate(rules=rules, model=model, baseline=step.gate.baseline)


def _input(key: str, ref: str, spec: PipelineSpec, folder: Path, spec_path: Path, line: int | None, step: str) -> Input:
    where = f"steps.{step}.inputs.{key}"
    if ref.startswith("dataset:"):
        name, _, version = ref[len("dataset:") :].partition(":")
        if not name or (version and not version.isdigit() and version != "latest"):
            raise spec_error(
                spec_path, line, where, f"write a dataset input as dataset:NAME or dataset:NAME:VERSION, not {ref!r}"
            )
        return Input(key, dataset=ref[len("dataset:") :])
    head, dot, tail = ref.partition(".")
    if dot and "/" not in ref and head in spec.steps:
        if tail not in spec.steps[head].outputs:
            outputs = ", ".join(spec.steps[head].outputs) or "none"
            raise spec_error(spec_path, line, where, f"step {head!r} has no output {tail!r}; its outputs: {outputs}")
        return Input(key, step=head, output=tail)
    path = (folder / ref).resolve()
    if not path.exists():
        steps = ", ".join(spec.steps)
        raise spec_error(
            spec_path,
            line,
            where,
            f"{ref!r} is neither STEP.OUTPUT (steps: {steps}) nor an existing file or folder ({path})",
        )
    return Input(key, path=path)


def substitute(value: Any, parameters: dict[str, Any], spec_path: Path, line: int | None, key: str) -> Any:
    """``"${name}"`` becomes the pipeline parameter (keeping its type); ``"a-${name}"`` interpolates text."""
    if not isinstance(value, str):
        return value
    for ref in _TEMPLATE.findall(value):
        if ref not in parameters:
            known = ", ".join(parameters) or "none"
            raise spec_error(spec_path, line, key, f"${{{ref}}} is not a pipeline parameter (parameters: {known})")
    whole = _TEMPLATE.fullmatch(value)
    if whole:
        return parameters[whole.group(1)]
    return _TEMPLATE.sub(lambda m: str(parameters[m.group(1)]), value)
