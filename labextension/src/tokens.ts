/**
 * Payload types of the jupyter-mlops REST API (`/mlops/api/`): aliases of the types that `jlpm build:types`
 * generates from `jupyter_mlops/server/openapi.yaml` (itself generated from the pydantic models of
 * `jupyter_mlops/server/models.py`, which derive from the core's records). Change a payload there, not here.
 */
import type { components } from './schema.generated';

type Schemas = components['schemas'];

export namespace Mlops {
  export type ModelVersion = Schemas['ModelVersionOut'];
  export type RegisteredModel = Schemas['RegisteredModelOut'];
  export type ModelVersionList = Schemas['ModelVersionList'];
  export type ModelDetail = Schemas['ModelDetail'];
  export type DeletedVersions = Schemas['DeletedVersions'];

  /** A version's gate verdict and approval state, and what the release verbs answer. */
  export type ReleaseState = Schemas['ReleaseStateOut'];
  export type ReleaseStateList = Schemas['ReleaseStateList'];
  export type Approval = Schemas['ApprovalOut'];
  export type Promotion = Schemas['PromotionOut'];
  /** What differs between two versions. */
  export type Comparison = Schemas['ComparisonOut'];
  export type EndpointHistory = Schemas['EndpointHistory'];
  export type MonitorHistory = Schemas['MonitorHistory'];

  export type Run = Schemas['RunOut'];
  export type RunStatus = Run['status'];
  export type RunList = Schemas['RunList'];
  export type RunCode = Schemas['RunCodeOut'];

  /** A CloudEvents 1.0 envelope. */
  export type CloudEvent = Schemas['CloudEvent'];
  export type EventList = Schemas['EventList'];

  export type ErrorBody = Schemas['ErrorOut'];
  export type RegisterVersionRequest = Schemas['RegisterVersionRequest'];
  export type UpdateVersionRequest = Schemas['UpdateVersionRequest'];

  export type Live = Schemas['LiveOut'];
  export type Deployment = Schemas['DeploymentOut'];
  export type Endpoint = Schemas['EndpointOut'];
  export type EndpointList = Schemas['EndpointList'];
  export type UpdateEndpointRequest = Schemas['UpdateEndpointRequest'];
  export type InvokeRequest = Schemas['InvokeRequest'];
  export type InvokeResult = Schemas['InvokeOut'];
  export type EndpointLogs = Schemas['EndpointLogs'];
  export type DeployRequest = Schemas['DeployRequest'];

  export type Pipeline = Schemas['PipelineOut'];
  export type PipelineList = Schemas['PipelineList'];
  export type PipelineRun = Schemas['PipelineRunOut'];
  export type PipelineRunList = Schemas['PipelineRunList'];

  /** A monitor run's outcome, as the monitor keeps it. */
  export type DriftResult = Schemas['MonitorRunOut'];
  export type Monitor = Schemas['MonitorOut'];
  export type MonitorList = Schemas['MonitorList'];
}

/** The plugin id; the sidebar's id (its tab has `data-id` equal to it). */
export const PLUGIN_ID = 'jupyter-mlops:plugin';
export const SIDEBAR_ID = 'jp-mlops-sidebar';
