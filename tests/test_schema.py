"""One schema per record: the served JSON, ``openapi.yaml`` and the labextension's generated TypeScript agree.

The schemas of the spec are generated from ``jupyter_mlops/server/models.py`` (which derives them from the core's
records) and the TypeScript types from the spec; these tests fail when one of them is stale or when a route
serves a field the spec does not have.
"""

from __future__ import annotations

import copy
import difflib
import json
import shlex
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from jupyter_mlops.server import spec as generator
from tests import test_handlers as rest
from tests.test_handlers import _classifier, _in_thread, _two_steps, _wait_collected, fetch

jp_server_config, ctx, ws, registered = rest.jp_server_config, rest.ctx, rest.ws, rest.registered  # its fixtures

pytest_plugins = ("pytest_jupyter.jupyter_server",)
SPEC = generator.SPEC
LABEXT = Path(__file__).parent.parent / "labextension"
GENERATED_TS = LABEXT / "src" / "schema.generated.ts"
FORMATS = FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _iso_time(value: object) -> bool:
    """ISO 8601, with or without an offset: the endpoint store hands back datetimes without a time zone (a
    deployment's created_at), which RFC 3339's date-time would refuse."""
    return not isinstance(value, str) or isinstance(datetime.fromisoformat(value), datetime)


# -- models.py -> openapi.yaml ---------------------------------------------------------------------------------------
def test_openapi_schemas_are_the_ones_generated_from_the_models():
    committed = SPEC.read_text()
    fresh = generator.render(committed)
    diff = "".join(difflib.unified_diff(committed.splitlines(True), fresh.splitlines(True), "openapi.yaml", "models"))
    assert fresh == committed, f"openapi.yaml is stale: run python -m jupyter_mlops.server.spec\n{diff[:4000]}"


# -- served JSON -> openapi.yaml ------------------------------------------------------------------------------------
def _closed(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with every record schema closed: each of its fields required, no other field allowed (a schema that
    says ``additionalProperties`` itself, like a monitor's stored result, keeps what it says)."""
    strict = copy.deepcopy(spec)
    for schema in strict["components"]["schemas"].values():
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
            schema["required"] = list(schema["properties"])
    return strict


def _validator(spec: dict[str, Any], path: str) -> Draft202012Validator:
    """The validator of the 200 JSON response of ``GET path``, its ``$ref`` resolved in the spec."""
    pointer = "/".join(["paths", path.replace("~", "~0").replace("/", "~1"), "get", "responses", "200", "content"])
    registry = Registry().with_resource("urn:openapi", Resource.from_contents(spec, default_specification=DRAFT202012))
    schema = {"$ref": f"urn:openapi#/{pointer}/application~1json/schema"}
    return Draft202012Validator(schema, registry=registry, format_checker=FORMATS)


def _json_get_paths(spec: dict[str, Any]) -> set[str]:
    return {
        path
        for path, item in spec["paths"].items()
        if "application/json" in item.get("get", {}).get("responses", {}).get("200", {}).get("content", {})
    }


async def test_every_get_route_serves_exactly_the_spec(jp_fetch, ws, registered, tmp_path):
    # Given one of everything: model versions, runs (one with a cell's code), an endpoint that scored requests,
    # a monitor that ran, a pipeline that ran, and the events all that emitted
    with ws.job(experiment="churn", name="train", autolog=False) as job:
        ws.client.log_metric(job.run_id, "auc", 0.91)
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    with ws.job(experiment="adhoc", name="cell", source="x = 1\n", notebook=notebook, autolog=False) as cell_job:
        pass
    from jupyter_mlops.pipelines import run

    await _in_thread(run, _two_steps(tmp_path / "pipe"), workspace=ws)
    reference = _classifier(ws)
    await _in_thread(ws.endpoints.create, "churn-api")
    try:
        await _in_thread(ws.endpoints.deploy, "churn-api", "blue", "clf:1")
        await _in_thread(ws.endpoints.set_split, "churn-api", traffic={"blue": 100})
        await _in_thread(ws.monitors.create, "churn-drift", "churn-api", reference=reference, schedule="1h")
        for start in range(0, 100, 25):
            rows = reference.iloc[start : start + 25].to_numpy().tolist()
            await _in_thread(ws.endpoints.invoke, "churn-api", {"inputs": rows})
        await _in_thread(_wait_collected, ws, "churn-api", 100)
        assert await _in_thread(ws.monitors.run, "churn-drift") is not None
        await fetch(jp_fetch, "endpoints", "churn-api")  # a first reading of /metrics: the next one has a rate
        # a rollout held at its first step, and an automation
        start = ws.rollouts.start
        await _in_thread(
            start, "churn-api", "green", model="clf:1", steps=[50, 100], bake="1h", guards={"min_requests": 1}
        )
        await _in_thread(ws.automations.create, "tell", on="model.registered", do={"notify": "${data.modelName}"})

        # When every GET route that answers JSON is read; Then each body is exactly what the spec says
        spec = _closed(yaml.safe_load(SPEC.read_text()))
        routes = {
            "/models": ("models",),
            "/models/{name}": ("models", "churn"),
            "/models/{name}/versions/{version}": ("models", "churn", "versions", "1"),
            "/models/{name}/release": ("models", "churn", "release"),
            "/models/{name}/compare": ("models", "churn", "compare", {"a": "1", "b": "2", "unchanged": "true"}),
            "/models/{name}/versions/{version}/release": ("models", "churn", "versions", "1", "release"),
            "/runs": ("runs",),
            "/runs/{run_id}": ("runs", job.run_id),
            "/runs/{run_id}/code": ("runs", cell_job.run_id, "code"),
            "/endpoints": ("endpoints",),
            "/endpoints/{name}": ("endpoints", "churn-api"),
            "/endpoints/{name}/logs": ("endpoints", "churn-api", "logs"),
            "/endpoints/{name}/history": ("endpoints", "churn-api", "history"),
            "/pipelines": ("pipelines",),
            "/pipelines/{name}/runs": ("pipelines", "nightly", "runs"),
            "/monitors": ("monitors",),
            "/monitors/{name}": ("monitors", "churn-drift"),
            "/monitors/{name}/history": ("monitors", "churn-drift", "history"),
            "/endpoints/{name}/rollout": ("endpoints", "churn-api", "rollout"),
            "/rollouts": ("rollouts",),
            "/automations": ("automations",),
            "/automations/{name}": ("automations", "tell"),
            "/automations/{name}/runs": ("automations", "tell", "runs"),
            "/events/recent": ("events", "recent"),
        }
        assert set(routes) == _json_get_paths(spec), "a GET route of openapi.yaml is not checked here"
        for path, parts in routes.items():
            params = parts[-1] if isinstance(parts[-1], dict) else {}
            code, body = await fetch(jp_fetch, *(p for p in parts if isinstance(p, str)), params=params)
            assert code == 200, (path, body)
            errors = [
                f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in _validator(spec, path).iter_errors(body)
            ]
            assert not errors, f"GET {path} does not match openapi.yaml:\n" + "\n".join(errors)
        # And the payloads were not empty ones: the nested records were checked too
        [endpoint] = (await fetch(jp_fetch, "endpoints"))[1]["endpoints"]
        assert endpoint["deployments"][0]["live"]["rate_per_s"] is not None
        assert (await fetch(jp_fetch, "monitors", "churn-drift"))[1]["last_result"]["rows"] == 100
    finally:
        await _in_thread(ws.endpoints.delete, "churn-api")


def test_a_renamed_field_does_not_pass():
    spec = _closed(yaml.safe_load(SPEC.read_text()))
    body = {"versions": [{"name": "m", "version": 1, "tags": {}, "aliases": [], "description": None, "source": "s"}]}
    body["versions"][0] |= {"run_id": None, "created_by": None, "created_at": None, "archived": False}
    assert _validator(spec, "/models").is_valid(body)
    body["versions"][0]["run"] = body["versions"][0].pop("run_id")
    assert not _validator(spec, "/models").is_valid(body)


# -- openapi.yaml -> TypeScript --------------------------------------------------------------------------------------
def _node() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the labextension's TypeScript types cannot be checked")
    if not (LABEXT / "node_modules" / "openapi-typescript").is_dir():
        pytest.skip("labextension/node_modules has no openapi-typescript: run jlpm install in labextension/")
    return node


def test_generated_typescript_is_the_one_of_the_current_spec():
    node = _node()
    assert GENERATED_TS.exists(), (
        "labextension/src/schema.generated.ts is missing: run jlpm build:types in labextension/"
    )
    # the build's own command (package.json), asked to compare instead of write
    command = shlex.split(json.loads((LABEXT / "package.json").read_text())["scripts"]["build:types"])
    assert command[0] == "openapi-typescript", command
    cli = LABEXT / "node_modules" / "openapi-typescript" / "bin" / "cli.js"
    done = subprocess.run(
        [node, str(cli), *command[1:], "--check"], cwd=LABEXT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, (
        "labextension/src/schema.generated.ts is not the one of openapi.yaml: run jlpm build:types in labextension/\n"
        + done.stdout[-2000:]
        + done.stderr[-2000:]
    )


def test_typescript_of_src_and_test_compiles_against_the_generated_types(tmp_path):
    """The build compiles src/ only; the unit tests' payloads (``Mlops.X`` literals) must fit the types too."""
    node = _node()
    if not GENERATED_TS.exists():
        pytest.skip("labextension/src/schema.generated.ts is missing: run jlpm build:types in labextension/")
    options = {"noEmit": True, "composite": False, "incremental": False, "rootDir": str(LABEXT)}
    options["lib"] = ["DOM", "ES2022"]  # the tests use Array.prototype.at, which vitest's node has
    config = {
        "extends": str(LABEXT / "tsconfig.json"),
        "compilerOptions": options,
        "include": [str(LABEXT / "src" / "**" / "*"), str(LABEXT / "test" / "**" / "*")],
    }
    (tmp_path / "tsconfig.json").write_text(json.dumps(config))
    tsc = LABEXT / "node_modules" / "typescript" / "bin" / "tsc"
    done = subprocess.run(
        [node, str(tsc), "-p", str(tmp_path / "tsconfig.json")], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
