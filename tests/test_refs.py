"""ModelRef is the one parser of model references: every accepted form and every refused one."""

from __future__ import annotations

import pytest

from jupyter_mlops.exceptions import InvalidInput
from jupyter_mlops.refs import ModelRef

ACCEPTED = [
    # text, name, version, alias, selector, uri
    ("churn:3", "churn", 3, None, "3", "models:/churn/3"),
    ("churn@champion", "churn", None, "champion", "champion", "models:/churn@champion"),
    ("models:/churn/3", "churn", 3, None, "3", "models:/churn/3"),
    ("models:/churn@champion", "churn", None, "champion", "champion", "models:/churn@champion"),
    ("models:/churn", "churn", None, None, "latest", "models:/churn"),
    ("churn:latest", "churn", None, None, "latest", "models:/churn"),
    ("models:/churn/latest", "churn", None, None, "latest", "models:/churn"),
    ("churn:champion", "churn", None, "champion", "champion", "models:/churn@champion"),
    ("my.model-v2_x:12", "my.model-v2_x", 12, None, "12", "models:/my.model-v2_x/12"),
    ("  churn:3  ", "churn", 3, None, "3", "models:/churn/3"),
    ("churn@latest", "churn", None, "latest", "latest", "models:/churn@latest"),
    ("churn:2147483647", "churn", 2147483647, None, "2147483647", "models:/churn/2147483647"),
]

REFUSED = [
    "",  # nothing
    "churn",  # no version
    ":3",  # no name
    "churn:",  # no version after ':'
    "churn@",  # no alias
    "@champion",  # no name
    "models:/",  # no name
    "models:/churn/",  # empty version
    "models:/churn/3/extra",  # a path after the version
    "models:/churn@",  # empty alias
    "churn:0",  # versions start at 1
    "churn:-1",  # not a version, not an alias
    "churn:9999999999999999999999",  # larger than any store can hold
    "churn:3:4",  # two selectors
    "a/b:3",  # '/' in the name
    "churn:champ ion",  # space in the alias
    "churn:\x003",  # a control character
]


@pytest.mark.parametrize(("text", "name", "version", "alias", "selector", "uri"), ACCEPTED)
def test_accepted_forms(text, name, version, alias, selector, uri):
    ref = ModelRef.parse(text)
    assert (ref.name, ref.version, ref.alias) == (name, version, alias)
    assert ref.selector == selector and ref.uri == uri
    assert ModelRef.parse(ref.uri) == ref  # the URI reads back as the same reference
    assert ModelRef.parse(str(ref)) == ref


@pytest.mark.parametrize("text", REFUSED)
def test_refused_forms_name_the_accepted_ones(text):
    with pytest.raises(InvalidInput) as excinfo:
        ModelRef.parse(text)
    message = str(excinfo.value)
    assert repr(text) in message
    assert "NAME:VERSION" in message or "versions are numbers" in message


def test_not_a_string_is_refused():
    with pytest.raises(InvalidInput, match="NAME:VERSION"):
        ModelRef.parse(3)  # type: ignore[arg-type]


def test_every_module_parses_references_through_model_ref():
    """No module keeps a parser of its own (the old private ``_model_ref`` / ``_parse_models_uri``)."""
    import pathlib

    root = pathlib.Path(__file__).parent.parent / "jupyter_mlops"
    offenders = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "labextension" not in path.parts
        and any(name in path.read_text() for name in ("def _model_ref", "def _parse_models_uri", "_model_ref("))
    ]
    assert offenders == []
