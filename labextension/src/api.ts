/**
 * The REST client: one `requestAPI<T>` funnel (token and XSRF headers come from `ServerConnection`) and one typed
 * function per route of `jupyter_mlops/server/openapi.yaml`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { components } from './schema.generated';
import { Mlops } from './tokens';

export const API_NAMESPACE = 'mlops/api';

export const NOT_ENABLED_MESSAGE =
  'The jupyter-mlops server extension does not answer. Enable it with ' +
  '`jupyter server extension enable jupyter_mlops` and restart JupyterLab.';

/** An error answered by the server: the HTTP status, the error class and the message that says what to do. */
export class MlopsApiError extends ServerConnection.ResponseError {
  constructor(
    response: Response,
    message: string,
    readonly errorName: string = '',
    readonly data: Record<string, unknown> = {}
  ) {
    super(response, message);
    this.name = 'MlopsApiError';
  }

  get status(): number {
    return this.response.status;
  }
}

export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  return parseJSON(await requestText(endPoint, init, settings)) as T;
}

/** The body of a successful answer as text; an error answer throws an `MlopsApiError` with the server's message. */
async function requestText(
  endPoint: string,
  init: RequestInit,
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<string> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  if (!response.ok) {
    const body = (parseJSON(text) ?? {}) as Partial<Mlops.ErrorBody>;
    if (response.status === 404 && !body.error) {
      // tornado's own 404: no route, so the server extension is not loaded
      throw new MlopsApiError(response, NOT_ENABLED_MESSAGE, 'NotEnabled');
    }
    const message = body.message || `${response.status} ${response.statusText}`.trim();
    throw new MlopsApiError(response, message, body.error ?? '', body.data ?? {});
  }
  return text;
}

function parseJSON(text: string): unknown {
  if (!text.length) {
    return null;
  }
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

function path(...parts: (string | number)[]): string {
  return parts.map(p => encodeURIComponent(String(p))).join('/');
}

function query(params: Record<string, string | number | boolean | null | undefined>): string {
  const entries = Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== '');
  return entries.length ? '?' + entries.map(([k, v]) => `${k}=${encodeURIComponent(String(v))}`).join('&') : '';
}

function json(method: string, body: unknown): RequestInit {
  return { method, body: JSON.stringify(body), headers: { 'Content-Type': 'application/json' } };
}

export type Settings = ServerConnection.ISettings | undefined;

export function listModelVersions(
  options: { filter?: string; includeArchived?: boolean } = {},
  settings?: Settings
): Promise<Mlops.ModelVersionList> {
  const q = query({ filter: options.filter, include_archived: options.includeArchived || undefined });
  return requestAPI<Mlops.ModelVersionList>('models' + q, {}, settings);
}

export function getModel(name: string, settings?: Settings): Promise<Mlops.ModelDetail> {
  return requestAPI<Mlops.ModelDetail>(path('models', name), {}, settings);
}

export function getModelVersion(
  name: string,
  version: number | string,
  settings?: Settings
): Promise<Mlops.ModelVersion> {
  return requestAPI<Mlops.ModelVersion>(path('models', name, 'versions', version), {}, settings);
}

export function registerModelVersion(
  name: string,
  body: Mlops.RegisterVersionRequest,
  settings?: Settings
): Promise<Mlops.ModelVersion> {
  return requestAPI<Mlops.ModelVersion>(path('models', name) + '/versions', json('POST', body), settings);
}

export function updateModelVersion(
  name: string,
  version: number | string,
  body: Mlops.UpdateVersionRequest,
  settings?: Settings
): Promise<Mlops.ModelVersion> {
  return requestAPI<Mlops.ModelVersion>(path('models', name, 'versions', version), json('PATCH', body), settings);
}

export function deleteModelVersion(
  name: string,
  version: number | string,
  options: { force?: boolean } = {},
  settings?: Settings
): Promise<Mlops.DeletedVersions> {
  const q = query({ force: options.force || undefined });
  return requestAPI<Mlops.DeletedVersions>(
    path('models', name, 'versions', version) + q,
    { method: 'DELETE' },
    settings
  );
}

export function setModelAlias(
  name: string,
  alias: string,
  version: number,
  settings?: Settings
): Promise<Mlops.ModelVersion> {
  return requestAPI<Mlops.ModelVersion>(path('models', name, 'aliases', alias), json('PUT', { version }), settings);
}

export function deleteModelAlias(name: string, alias: string, settings?: Settings): Promise<null> {
  return requestAPI<null>(path('models', name, 'aliases', alias), { method: 'DELETE' }, settings);
}

/** Every version's gate verdict and approval state (one request per model, for the Models panel). */
export function getModelRelease(name: string, settings?: Settings): Promise<Mlops.ReleaseStateList> {
  return requestAPI<Mlops.ReleaseStateList>(path('models', name, 'release'), {}, settings);
}

export function getVersionRelease(
  name: string,
  version: number | string,
  settings?: Settings
): Promise<Mlops.ReleaseState> {
  return requestAPI<Mlops.ReleaseState>(path('models', name, 'versions', version, 'release'), {}, settings);
}

/** Request an approval (`approval`), approve or reject: each answers the version's release state after it. */
export function decide(
  name: string,
  version: number | string,
  verb: 'approval' | 'approve' | 'reject',
  text: string | null,
  settings?: Settings
): Promise<Mlops.ReleaseState> {
  const body = verb === 'approval' ? { reason: text } : { comment: text };
  return requestAPI<Mlops.ReleaseState>(path('models', name, 'versions', version, verb), json('POST', body), settings);
}

/** Move a protected alias to the version; a refusal (409) says what the policy misses. */
export function promoteVersion(
  name: string,
  version: number | string,
  alias: string,
  reason: string | null,
  settings?: Settings
): Promise<Mlops.Promotion> {
  return requestAPI<Mlops.Promotion>(
    path('models', name, 'versions', version, 'promote'),
    json('POST', { alias, reason }),
    settings
  );
}

/** What differs between versions `a` and `b` of `name` (numbers, aliases or references). */
export function compareVersions(
  name: string,
  a: string | number,
  b: string | number,
  options: { unchanged?: boolean } = {},
  settings?: Settings
): Promise<Mlops.Comparison> {
  const q = query({ a, b, unchanged: options.unchanged || undefined });
  return requestAPI<Mlops.Comparison>(path('models', name, 'compare') + q, {}, settings);
}

export function listRuns(
  options: { experiment?: string; maxResults?: number } = {},
  settings?: Settings
): Promise<Mlops.RunList> {
  const q = query({ experiment: options.experiment, max_results: options.maxResults });
  return requestAPI<Mlops.RunList>('runs' + q, {}, settings);
}

export function getRun(runId: string, settings?: Settings): Promise<Mlops.Run> {
  return requestAPI<Mlops.Run>(path('runs', runId), {}, settings);
}

export function getRunCode(runId: string, settings?: Settings): Promise<Mlops.RunCode> {
  return requestAPI<Mlops.RunCode>(path('runs', runId, 'code'), {}, settings);
}

export function listEndpoints(settings?: Settings): Promise<Mlops.EndpointList> {
  return requestAPI<Mlops.EndpointList>('endpoints', {}, settings);
}

export function getEndpoint(name: string, settings?: Settings): Promise<Mlops.Endpoint> {
  return requestAPI<Mlops.Endpoint>(path('endpoints', name), {}, settings);
}

export function updateEndpoint(
  name: string,
  body: Mlops.UpdateEndpointRequest,
  settings?: Settings
): Promise<Mlops.Endpoint> {
  return requestAPI<Mlops.Endpoint>(path('endpoints', name), json('PATCH', body), settings);
}

export function invokeEndpoint(
  name: string,
  body: Mlops.InvokeRequest,
  settings?: Settings
): Promise<Mlops.InvokeResult> {
  return requestAPI<Mlops.InvokeResult>(path('endpoints', name, 'invoke'), json('POST', body), settings);
}

export function endpointLogs(
  name: string,
  options: { deployment?: string; lines?: number } = {},
  settings?: Settings
): Promise<Mlops.EndpointLogs> {
  const q = query({ deployment: options.deployment, lines: options.lines });
  return requestAPI<Mlops.EndpointLogs>(path('endpoints', name, 'logs') + q, {}, settings);
}

export function deployModel(
  endpoint: string,
  body: Mlops.DeployRequest,
  settings?: Settings
): Promise<Mlops.Deployment> {
  return requestAPI<Mlops.Deployment>(path('endpoints', endpoint, 'deployments'), json('POST', body), settings);
}

/** A rollout's record: state, current step and percent, guards and the figures of the step's window. */
export type Rollout = components['schemas']['RolloutOut'];
export type RolloutList = components['schemas']['RolloutList'];
export type StartRolloutRequest = components['schemas']['StartRolloutRequest'];
export type Automation = components['schemas']['AutomationOut'];
export type AutomationList = components['schemas']['AutomationList'];
export type AutomationRunList = components['schemas']['AutomationRunList'];

/** The endpoint's current or last rollout; an MlopsApiError with status 404 when it never had one. */
export function getRollout(endpoint: string, settings?: Settings): Promise<Rollout> {
  return requestAPI<Rollout>(path('endpoints', endpoint, 'rollout'), {}, settings);
}

export function startRollout(endpoint: string, body: StartRolloutRequest, settings?: Settings): Promise<Rollout> {
  return requestAPI<Rollout>(path('endpoints', endpoint, 'rollout'), json('POST', body), settings);
}

/** Pause, resume or abort (abort answers once the traffic is back to the split from before). */
export function rolloutVerb(
  endpoint: string,
  verb: 'pause' | 'resume' | 'abort',
  settings?: Settings
): Promise<Rollout> {
  return requestAPI<Rollout>(path('endpoints', endpoint, 'rollout', verb), json('POST', {}), settings);
}

/** Every rollout (of `endpoint`), newest first. */
export function listRollouts(options: { endpoint?: string } = {}, settings?: Settings): Promise<RolloutList> {
  return requestAPI<RolloutList>('rollouts' + query({ endpoint: options.endpoint }), {}, settings);
}

export function listAutomations(settings?: Settings): Promise<AutomationList> {
  return requestAPI<AutomationList>('automations', {}, settings);
}

export function getAutomation(name: string, settings?: Settings): Promise<Automation> {
  return requestAPI<Automation>(path('automations', name), {}, settings);
}

export function listAutomationRuns(
  name: string,
  options: { limit?: number } = {},
  settings?: Settings
): Promise<AutomationRunList> {
  return requestAPI<AutomationRunList>(
    path('automations', name, 'runs') + query({ limit: options.limit }),
    {},
    settings
  );
}

export function deleteAutomation(name: string, settings?: Settings): Promise<null> {
  return requestAPI<null>(path('automations', name), { method: 'DELETE' }, settings);
}

export function listPipelines(settings?: Settings): Promise<Mlops.PipelineList> {
  return requestAPI<Mlops.PipelineList>('pipelines', {}, settings);
}

export function listPipelineRuns(
  name: string,
  options: { maxResults?: number } = {},
  settings?: Settings
): Promise<Mlops.PipelineRunList> {
  const q = query({ max_results: options.maxResults });
  return requestAPI<Mlops.PipelineRunList>(path('pipelines', name, 'runs') + q, {}, settings);
}

export function listMonitors(settings?: Settings): Promise<Mlops.MonitorList> {
  return requestAPI<Mlops.MonitorList>('monitors', {}, settings);
}

/** The monitor's last evidently report (a whole HTML page), or an MlopsApiError that says why there is none. */
/** The evidently report of the last run of monitor `name`, or of its run `run`. */
export function monitorReport(name: string, settings?: Settings, run?: string): Promise<string> {
  return requestText(path('monitors', name, 'report') + query({ run }), {}, settings);
}

export function recentEvents(
  options: { after?: string; limit?: number } = {},
  settings?: Settings
): Promise<Mlops.EventList> {
  return requestAPI<Mlops.EventList>(
    'events/recent' + query({ after: options.after, limit: options.limit }),
    {},
    settings
  );
}

/** The URL of the server-sent event stream (an EventSource sends the login cookie; the token when there is one). */
export function eventsURL(settings: ServerConnection.ISettings = ServerConnection.makeSettings()): string {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, 'events');
  return settings.token ? `${url}?token=${encodeURIComponent(settings.token)}` : url;
}

/** The message to show a person for any error thrown by these functions. */
export function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    return error.message;
  }
  return String(error);
}
