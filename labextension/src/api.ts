/**
 * The REST client: one `requestAPI<T>` funnel (token and XSRF headers come from `ServerConnection`) and one typed
 * function per route of `jupyter_mlops/server/openapi.yaml`.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

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
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: unknown = null;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const body = (data ?? {}) as Partial<Mlops.ErrorBody>;
    if (response.status === 404 && !body.error) {
      // tornado's own 404: no route, so the server extension is not loaded
      throw new MlopsApiError(response, NOT_ENABLED_MESSAGE, 'NotEnabled');
    }
    const message = body.message || `${response.status} ${response.statusText}`.trim();
    throw new MlopsApiError(response, message, body.error ?? '', body.data ?? {});
  }
  return data as T;
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
