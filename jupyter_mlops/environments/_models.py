"""The pydantic schemas of the two spec formats (imported on first load: pydantic costs ~0.15 s to import)."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
MIN_PYTHON = (3, 8)


def python_version(value: Any) -> str:
    text = str(value).strip()
    match = re.fullmatch(r"(\d+)\.(\d+)", text)
    if not match:
        raise ValueError(f'{text!r} is not a major.minor Python version: write it like python: "3.11"')
    if (int(match[1]), int(match[2])) < MIN_PYTHON:
        hint = ' (YAML reads 3.10 as the number 3.1: quote it, python: "3.10")' if isinstance(value, float) else ""
        raise ValueError(f"Python {text} is too old: give 3.{MIN_PYTHON[1]} or newer{hint}")
    return text


class PipSpec(BaseModel):
    """``envs/NAME.yaml``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    python: str
    pip: list[str] = Field(default_factory=list)
    requirements: str | None = None
    description: str | None = None

    @field_validator("python", mode="before")
    @classmethod
    def _python(cls, value: Any) -> str:
        return python_version(value)


class CondaSpec(BaseModel):
    """A conda ``environment.yml``: only the python pin and the pip part are used."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, pattern=NAME_PATTERN)
    channels: list[str] = Field(default_factory=list)
    dependencies: list[str | dict[str, list[str]]]
    prefix: str | None = None
    variables: dict[str, Any] | None = None
