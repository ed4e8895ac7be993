"""The step notebooks run inside their pipeline (tests/test_pipelines.py, 02-pipeline.ipynb), never alone."""

collect_ignore_glob = ["*.ipynb"]
