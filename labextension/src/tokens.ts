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
}

/** The plugin id; the sidebar's id (its tab has `data-id` equal to it). */
export const PLUGIN_ID = 'jupyter-mlops:plugin';
export const SIDEBAR_ID = 'jp-mlops-sidebar';
