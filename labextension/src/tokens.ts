/**
 * Payload types of the jupyter-mlops REST API (`/mlops/api/`), mirroring the pydantic models in
 * `jupyter_mlops/server/models.py` and the schemas of `jupyter_mlops/server/openapi.yaml`.
 */
export namespace Mlops {
  export interface ModelVersion {
    name: string;
    version: number;
    tags: Record<string, string>;
    aliases: string[];
    description: string | null;
    source: string;
    run_id: string | null;
    created_by: string | null;
    created_at: string | null;
    archived: boolean;
  }

  export interface RegisteredModel {
    name: string;
    description: string | null;
    tags: Record<string, string>;
    aliases: Record<string, number>;
    latest_version: number | null;
    created_at: string | null;
    updated_at: string | null;
  }

  export interface ModelVersionList {
    versions: ModelVersion[];
  }

  export interface ModelDetail {
    model: RegisteredModel;
    versions: ModelVersion[];
  }

  export interface DeletedVersions {
    name: string;
    deleted: number[];
  }

  export type RunStatus = 'RUNNING' | 'SCHEDULED' | 'FINISHED' | 'FAILED' | 'KILLED';

  export interface Run {
    run_id: string;
    name: string | null;
    experiment: string;
    status: RunStatus;
    user: string | null;
    start_time: string | null;
    end_time: string | null;
    duration_s: number | null;
    params: Record<string, string>;
    metrics: Record<string, number>;
    tags: Record<string, string>;
    parent_run_id: string | null;
    artifact_uri: string;
  }

  export interface RunList {
    runs: Run[];
  }

  /** A CloudEvents 1.0 envelope. */
  export interface CloudEvent {
    specversion: '1.0';
    id: string;
    source: string;
    type: string;
    time: string;
    subject: string | null;
    datacontenttype: 'application/json';
    data: Record<string, unknown>;
  }

  export interface EventList {
    events: CloudEvent[];
  }

  export interface ErrorBody {
    message: string;
    error?: string;
    data?: Record<string, unknown>;
  }

  export interface RegisterVersionRequest {
    source: string;
    tags?: Record<string, string>;
    description?: string | null;
  }

  export interface UpdateVersionRequest {
    tags?: Record<string, string> | null;
    remove_tags?: string[] | null;
    archived?: boolean | null;
  }
  /** Read from the endpoint's /metrics: the rate since the server's previous reading (null on the first). */
  export interface Live {
    requests: number;
    errors: number;
    rate_per_s: number | null;
    p50_ms: number | null;
    p99_ms: number | null;
  }

  export interface Deployment {
    name: string;
    model: string;
    status: string;
    traffic: number;
    mirror: number;
    error: string | null;
    created_at: string | null;
    requested: string | null;
    /** router (the endpoint's workers), venv (its environment's process) or docker */
    runs_in?: string;
    environment?: string | null;
    live?: Live | null;
  }

  export interface Endpoint {
    name: string;
    status: string;
    scoring_uri: string | null;
    auth: 'key' | 'none';
    traffic: Record<string, number>;
    mirror: Record<string, number>;
    deployments: Deployment[];
    note: string | null;
  }

  export interface EndpointList {
    endpoints: Endpoint[];
  }

  export interface UpdateEndpointRequest {
    traffic?: Record<string, number> | null;
    mirror?: Record<string, number> | null;
  }

  export interface InvokeRequest {
    data: unknown;
    deployment?: string | null;
  }

  export interface InvokeResult {
    response: unknown;
  }

  export interface EndpointLogs {
    endpoint: string;
    deployment: string | null;
    text: string;
  }

  export interface DeployRequest {
    name: string;
    model: string;
  }

  export interface Pipeline {
    name: string;
    version: string;
    spec_path: string;
    runs: number;
    last_status: string | null;
    last_run_id: string | null;
    last_run_at: string | null;
    steps: string[];
  }

  export interface PipelineList {
    pipelines: Pipeline[];
  }

  export interface PipelineRun {
    run_id: string;
    pipeline: string;
    version: string;
    status: string;
    start_time: string | null;
    duration_s: number | null;
    /** step name → succeeded, reused, failed, skipped, running, ... */
    steps: Record<string, string>;
    resumed_from: string | null;
  }

  export interface PipelineRunList {
    runs: PipelineRun[];
  }

  /** A monitor run's outcome, as the monitor keeps it. */
  export interface DriftResult {
    rows?: number;
    drifted?: boolean;
    drift_share?: number | null;
    alerts?: string[];
    window_start?: string;
    window_end?: string;
    run_id?: string | null;
    [key: string]: unknown;
  }

  export interface Monitor {
    name: string;
    endpoint: string;
    deployment: string | null;
    features: string[];
    schedule_s: number;
    thresholds: Record<string, number>;
    window_end: string;
    last_run_id: string | null;
    last_result: DriftResult | null;
    created_at: string | null;
  }

  export interface MonitorList {
    monitors: Monitor[];
  }

  export interface RunCode {
    run_id: string;
    notebook_artifact: string | null;
    contents_path: string | null;
    notebook: Record<string, unknown> | null;
    cell: string | null;
  }
}

/** The plugin id; the sidebar's id (its tab has `data-id` equal to it). */
export const PLUGIN_ID = 'jupyter-mlops:plugin';
export const SIDEBAR_ID = 'jp-mlops-sidebar';
