"""The ``components.schemas`` section of ``openapi.yaml``, generated from the pydantic models of ``models.py``.

The rest of the spec (paths, parameters, responses, security) is written by hand; every schema it refers to
(``#/components/schemas/NAME``) is the model ``models.NAME``, with the models it nests. ``python -m
jupyter_mlops.server.spec`` rewrites the section in place (``--check`` only says whether it is up to date), and
the labextension's TypeScript types are generated from the result.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema

from jupyter_mlops.server import models

SPEC = Path(__file__).with_name("openapi.yaml")
REF = "#/components/schemas/"
_SECTION = re.compile(r"^  schemas:\n(?:(?:    .*)?\n)*", re.MULTILINE)  # to the next key at the same level or above


class _Untitled(GenerateJsonSchema):
    """No ``title`` on every property (pydantic's "Run Id" for run_id): the names say it."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def referenced(spec_text: str) -> list[str]:
    """The schema names the hand-written part of the spec refers to."""
    return sorted(set(re.findall(re.escape(REF) + r"(\w+)", _SECTION.sub("", spec_text))))


def schemas(names: list[str]) -> dict[str, Any]:
    """The JSON schemas of the models ``names`` and of those they nest, by name: request models as they validate
    input, response models as they serialize."""
    found: list[tuple[type[BaseModel], Any]] = []
    for name in names:
        model = getattr(models, name, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise LookupError(f"openapi.yaml refers to {REF}{name}, which is not a model in {models.__name__}")
        found.append((model, "validation" if issubclass(model, models.RequestModel) else "serialization"))
    _, top = models_json_schema(found, ref_template=REF + "{model}", schema_generator=_Untitled)
    defs = top["$defs"]
    for schema in defs.values():
        schema.pop("title", None)
    return {name: defs[name] for name in sorted(defs)}


def render(spec_text: str) -> str:
    """The spec with its ``components.schemas`` section generated anew."""
    if not _SECTION.search(spec_text):
        raise ValueError("openapi.yaml has no components.schemas section (a line '  schemas:') to generate")
    generated = _dump({"schemas": schemas(referenced(spec_text))})
    return _SECTION.sub(lambda _: _indent(generated, "  "), spec_text, count=1)


# -- YAML: block style down to each schema's properties, one line for each property --------------------------------
class _Flow(dict):
    pass


class _FlowList(list):
    pass


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data, flow_style=True))
_Dumper.add_representer(_FlowList, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))
_FIRST = ("type", "description", "additionalProperties", "required", "properties")


def _dump(section: dict[str, Any]) -> str:
    for name, schema in section["schemas"].items():
        if "properties" in schema:
            schema["properties"] = {k: _Flow(v) for k, v in schema["properties"].items()}
        if "required" in schema:
            schema["required"] = _FlowList(schema["required"])
        ordered = {k: schema[k] for k in _FIRST if k in schema} | {k: v for k, v in schema.items() if k not in _FIRST}
        section["schemas"][name] = ordered
    header = "# Generated from jupyter_mlops/server/models.py by `python -m jupyter_mlops.server.spec`: do not edit.\n"
    body = yaml.dump(section, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)
    return body.replace("schemas:\n", "schemas:\n  " + header, 1)


def _indent(text: str, prefix: str) -> str:
    return "".join(prefix + line if line.strip() else line for line in text.splitlines(keepends=True))


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    current = SPEC.read_text()
    fresh = render(current)
    if "--check" in args:
        if fresh != current:
            print(f"{SPEC} is out of date: run python -m jupyter_mlops.server.spec", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        SPEC.write_text(fresh)
        print(f"rewrote the schemas of {SPEC}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
