"""The public surface: what `import jupyter_mlops` promises."""

import subprocess
import sys

import jupyter_mlops


def test_all_is_exactly_the_public_surface():
    assert sorted(jupyter_mlops.__all__) == [
        "BackendUnavailable",
        "Conflict",
        "FilterSyntaxError",
        "InvalidInput",
        "MlopsError",
        "ModelInUseError",
        "NotFound",
        "Workspace",
        "__version__",
        "audit",
        "batch",
        "convert_to_onnx",
        "datasets",
        "default_workspace",
        "drift",
        "endpoints",
        "environments",
        "events",
        "explain",
        "job",
        "lineage",
        "load_ipython_extension",
        "log_dataset",
        "models",
        "monitors",
        "package",
        "pipelines",
        "register_model",
        "runs",
        "ui",
        "use_workspace",
    ]
    for name in jupyter_mlops.__all__:
        # resolved lazily (the default workspace's services, modules imported on first use)
        if name not in (
            "batch",
            "endpoints",
            "monitors",
            "environments",
            "events",
            "models",
            "pipelines",
            "runs",
            "ui",
        ):
            assert hasattr(jupyter_mlops, name), name


def test_import_is_light():
    code = (
        "import sys, jupyter_mlops; "
        "print([m for m in ('mlflow', 'pandas', 'IPython', 'sqlalchemy') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_errors_carry_http_statuses():
    assert jupyter_mlops.InvalidInput("x").http_status == 400
    assert jupyter_mlops.NotFound("x").http_status == 404
    assert jupyter_mlops.ModelInUseError("x", deployments=["e/d"]).http_status == 409
    assert jupyter_mlops.BackendUnavailable("x").http_status == 503
