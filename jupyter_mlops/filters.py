"""Azure ML's model filter syntax, translated into an MLflow ``search_model_versions`` filter.

stage=prod                 tag ``stage`` equals ``prod``
stage=prod,team=risk       several terms joined by ``,`` must all hold (AND)
validated                  a bare TagName: the version has the tag
name=churn*                the model name, ``*`` matches any characters (also in tag values)
"""

from __future__ import annotations

import re

from jupyter_mlops.exceptions import FilterSyntaxError

SYNTAX_HELP = (
    "Filter syntax: TERM[,TERM...] where TERM is TagName=TagValue (tag equals value), a bare TagName "
    "(has the tag) or name=PATTERN (model name); '*' matches any characters. "
    "Examples: 'stage=prod', 'stage=prod,team=risk', 'validated', 'name=churn*'."
)
_KEY = r"[A-Za-z_][A-Za-z0-9_.\-]*"
_VALUE = r"[^=,'\"`\\]+"
_TERM = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?:=\s*(?P<value>{_VALUE}?)\s*)?$")


def to_mlflow_filter(text: str | None) -> str:
    """The MLflow filter string for an Azure-style filter; raises FilterSyntaxError showing the syntax."""
    if text is None or not text.strip():
        return ""
    clauses = []
    for raw in text.split(","):
        match = _TERM.match(raw)
        if not match or (match.group("value") is not None and not match.group("value").strip()):
            problem = f"the term {raw.strip()!r}" if raw.strip() else "an empty term"
            raise FilterSyntaxError(f"Cannot parse the filter {text!r}: {problem} is not valid. {SYNTAX_HELP}")
        key, value = match.group("key"), match.group("value")
        column = "name" if key == "name" else f"tags.`{key}`"
        if value is None:
            if key == "name":
                raise FilterSyntaxError(f"Cannot parse the filter {text!r}: 'name' needs a value. {SYNTAX_HELP}")
            clauses.append(f"{column} LIKE '%'")
        elif "*" in value:
            clauses.append(f"{column} LIKE '{_like_pattern(value.strip())}'")
        else:
            clauses.append(f"{column} = '{value.strip()}'")
    return " AND ".join(clauses)


def _like_pattern(glob: str) -> str:
    return glob.replace("*", "%")
