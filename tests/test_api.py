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
        "automations",
        "batch",
        "compare",
        "convert_to_onnx",
        "datasets",
        "default_workspace",
        "drift",
        "endpoints",
        "environments",
        "evaluate",
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


def test_mlops_x_is_the_default_workspace_x_even_after_its_module_is_imported(tmp_path):
    """``mlops.datasets`` and ``mlops.audit`` share their names with modules; importing those modules (which every
    use of the service does) must not replace the service or the verb on the package."""
    code = (
        "import jupyter_mlops as mlops, inspect\n"
        "first = mlops.datasets\n"
        "import jupyter_mlops.datasets, jupyter_mlops.audit, jupyter_mlops.lineage, jupyter_mlops.explain\n"
        "assert mlops.datasets is first is mlops.default_workspace().datasets, mlops.datasets\n"
        "assert mlops.models is mlops.default_workspace().models\n"
        "for verb in (mlops.audit, mlops.lineage, mlops.explain, mlops.job, mlops.register_model,\n"
        "             mlops.convert_to_onnx, mlops.package):\n"
        "    assert callable(verb) and 'workspace' in inspect.signature(verb).parameters, verb\n"
        "ws = mlops.Workspace('other')\n"
        "assert mlops.audit('churn', workspace=ws) == []\n"
        "assert mlops.pipelines.list_pipelines(workspace=ws) == ws.pipelines.list()\n"
        "for name in ('models', 'runs', 'endpoints', 'batch', 'monitors', 'datasets', 'environments',\n"
        "             'pipelines', 'events'):\n"
        "    assert getattr(ws, name) is getattr(ws, name), name  # built once, lazily\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_ui_has_the_panels_and_the_monitor_chart():
    import jupyter_mlops.ui as ui

    assert jupyter_mlops.ui is ui
    from jupyter_mlops import widgets

    assert set(ui.__all__) >= {*widgets.__all__, "monitor"} and {"models", "runs", "drift"} <= set(ui.__all__)
    assert all(callable(getattr(ui, name)) for name in ui.__all__)
