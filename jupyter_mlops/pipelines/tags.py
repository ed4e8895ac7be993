"""Every name a pipeline writes into MLflow: run kinds, tags and artifact paths, in one place.

Runs written by older versions carry the same names, and other modules (lineage, audit, the Lab) filter on them,
so a value here is part of the stored format: add names, do not rename them. A name ending in ``.`` is a
prefix completed by an input, output or option name.
"""

from __future__ import annotations

# -- what a run is --------------------------------------------------------------------------------------------------
KIND_TAG = "mlops.kind"  # on runs and on the pipeline's experiment
PIPELINE_KIND = "pipeline"  # the experiment's kind
PIPELINE_RUN_KIND = "pipeline-run"
STEP_RUN_KIND = "pipeline-step"
TRIAL_RUN_KIND = "pipeline-trial"
PIPELINE_TAG = "mlops.pipeline"  # the pipeline's name, on every run of it
ERROR_TAG = "mlops.error"
ENV_HASH_TAG = "mlops.env_hash"
GIT_DIRTY_TAG = "mlops.git_dirty"

# -- the pipeline run -------------------------------------------------------------------------------------------------
VERSION_TAG = "mlops.pipeline.version"
SPEC_PATH_TAG = "mlops.pipeline.spec_path"
OPTION_TAG = "mlops.pipeline.option."  # + only / from / force
RESUMED_TAG = "mlops.pipeline.resumed_from"
GATED_TAG = "mlops.pipeline.gated"  # a finished run that a step's gate stopped: which gate, which metric, by how much
STATES_TAG = "mlops.pipeline.steps"  # JSON: step -> state; pending/skipped from the start, final at the end
# the runner process (a ProcessIdentity): a later look marks the run of a dead runner KILLED
PID_TAG = "mlops.pipeline.pid"
HOST_TAG = "mlops.pipeline.host"
PID_START_TAG = "mlops.pipeline.pid_start"  # tells a live process from a new one that reused the PID

# -- a step run -------------------------------------------------------------------------------------------------------
STEP_TAG = "mlops.step.name"
KEY_TAG = "mlops.step.cache_key"
STATUS_TAG = "mlops.step.status"
REUSED_FROM_TAG = "mlops.step.reused_from"
NOTEBOOK_HASH_TAG = "mlops.notebook_hash"
INPUT_TAG = "mlops.input."  # + name: content hash
INPUT_PATH_TAG = "mlops.input_path."  # + name
OUTPUT_TAG = "mlops.output."  # + name: content hash
OUTPUT_PATH_TAG = "mlops.output_path."  # + name
OUTPUT_KIND_TAG = "mlops.output_kind."  # + name: file or folder
EXECUTOR_TAG = "mlops.executor"
WORKER_TAG = "mlops.executor.worker"
REGISTERED_TAG = "mlops.registered"  # NAME:VERSION of the model version registered from the step's output

# -- a sweep step and its trials --------------------------------------------------------------------------------------
BEST_TRIAL_TAG = "mlops.sweep.best_trial"
BEST_RUN_TAG = "mlops.sweep.best_run_id"
TRIAL_TAG = "mlops.trial"  # the trial's number in its sweep
TRIAL_PIPELINE_RUN_TAG = "mlops.trial.pipeline_run"  # lets a later look mark the trials of a dead runner KILLED

# -- artifact paths ---------------------------------------------------------------------------------------------------
SPEC_ARTIFACT = "pipeline/pipeline.yaml"
PARAMETERS_ARTIFACT = "pipeline/parameters.json"
OUTPUTS_ARTIFACT = "outputs"  # + /name: a step's outputs
TRIALS_ARTIFACT = "sweep/trials.json"
TRIALS_CSV_ARTIFACT = "sweep/trials.csv"
