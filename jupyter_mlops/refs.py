"""ModelRef: the one parser of the ways a user names a model version.

Accepted forms (MLflow's URIs and the short forms of our CLI)::

    churn:3              version 3            models:/churn/3       version 3
    churn@champion       the alias            models:/churn@champion
    churn:latest         the newest version   models:/churn         the newest version
    churn:champion       the alias (a selector after ':' that is not a number)

Anything else is refused with an InvalidInput naming the accepted forms.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from jupyter_mlops.exceptions import InvalidInput

FORMS = "NAME:VERSION, NAME@ALIAS, models:/NAME/VERSION, models:/NAME@ALIAS or models:/NAME"
MAX_VERSION = 2**31 - 1  # MLflow's stores keep versions as 32-bit integers
_SELECTOR = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True)
class ModelRef:
    """A model and which of its versions: a number, an alias, or neither (the newest)."""

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        if not isinstance(text, str):
            raise InvalidInput(f"Name the model as {FORMS}, not {text!r}.")
        stripped = text.strip()
        if stripped.startswith("models:/"):
            rest = stripped[len("models:/") :]
            if "@" in rest:
                name, _, selector = rest.partition("@")
                return cls._build(text, name, selector, alias_only=True)
            name, sep, selector = rest.partition("/")
            if not sep:
                return cls._build(text, name, "latest")
            return cls._build(text, name, selector)
        if "@" in stripped:
            name, _, selector = stripped.partition("@")
            return cls._build(text, name, selector, alias_only=True)
        name, sep, selector = stripped.partition(":")
        if not sep:
            raise InvalidInput(f"{text!r} names no version: use {FORMS}.", ref=text)
        return cls._build(text, name, selector)

    @classmethod
    def _build(cls, text: str, name: str, selector: str, *, alias_only: bool = False) -> ModelRef:
        if not name or any(c in name for c in "/:@") or name != name.strip():
            raise InvalidInput(f"{text!r} has no valid model name: use {FORMS}.", ref=text)
        if selector.isdigit() and not alias_only:
            number = int(selector)
            if not 1 <= number <= MAX_VERSION:
                raise InvalidInput(
                    f"{text!r}: model versions are numbers from 1 to {MAX_VERSION}, not {selector}.", ref=text
                )
            return cls(name, version=number)
        if not _SELECTOR.match(selector):
            raise InvalidInput(f"{text!r} names no valid version or alias: use {FORMS}.", ref=text)
        if selector == "latest" and not alias_only:
            return cls(name)
        return cls(name, alias=selector)

    @property
    def selector(self) -> str:
        """What ``ModelRegistry.get`` takes: the number, the alias or ``latest``."""
        if self.version is not None:
            return str(self.version)
        return self.alias or "latest"

    @property
    def uri(self) -> str:
        """The standard MLflow URI."""
        if self.version is not None:
            return f"models:/{self.name}/{self.version}"
        if self.alias is not None:
            return f"models:/{self.name}@{self.alias}"
        return f"models:/{self.name}"

    def __str__(self) -> str:
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return f"{self.name}:{self.selector}"


__all__ = ["FORMS", "ModelRef"]
