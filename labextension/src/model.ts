/**
 * The state of the sidebar panels, with signals the views listen to. No DOM here: the views render it, the tests
 * drive it with a fake `fetch`.
 */
import { ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import * as api from './api';
import { Mlops } from './tokens';

export const PAGE_SIZE = 50;

/** A page of `items` (0-based), clamped to the pages that exist. */
export function paginate<T>(items: T[], page: number, size = PAGE_SIZE): { items: T[]; page: number; pages: number } {
  const pages = Math.max(1, Math.ceil(items.length / size));
  const clamped = Math.min(Math.max(0, page), pages - 1);
  return { items: items.slice(clamped * size, (clamped + 1) * size), page: clamped, pages };
}

/** Consecutive versions of the same model, in order: `[[name, versions], ...]`. */
export function groupByName(versions: Mlops.ModelVersion[]): [string, Mlops.ModelVersion[]][] {
  const groups: [string, Mlops.ModelVersion[]][] = [];
  for (const v of versions) {
    const last = groups[groups.length - 1];
    if (last && last[0] === v.name) {
      last[1].push(v);
    } else {
      groups.push([v.name, [v]]);
    }
  }
  return groups;
}

export function formatDuration(seconds: number | null): string {
  if (seconds === null || seconds === undefined) {
    return '';
  }
  if (seconds < 1) {
    return `${Math.round(seconds * 1000)} ms`;
  }
  if (seconds < 60) {
    return `${seconds.toFixed(1)} s`;
  }
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) {
    return `${minutes} min ${Math.round(seconds % 60)} s`;
  }
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** `14:05:09` for a time today, `Nov 26 14:05` before (local time). */
export function formatTime(iso: string | null, now: Date = new Date()): string {
  if (!iso) {
    return '';
  }
  const time = new Date(iso);
  const hms = time.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
  if (time.toDateString() === now.toDateString()) {
    return hms;
  }
  const day = time.toLocaleDateString([], { month: 'short', day: 'numeric' });
  return `${day} ${hms.slice(0, 5)}`;
}

/** The first `n` metrics by name, formatted for a table cell: `auc 0.912 · f1 0.8`. */
export function keyMetrics(metrics: Record<string, number>, n = 3): string {
  return Object.keys(metrics)
    .sort()
    .slice(0, n)
    .map(k => `${k} ${Number(metrics[k].toPrecision(3))}`)
    .join(' · ');
}

/** The base of every panel state: a `changed` signal the views re-render on. */
export abstract class Model {
  protected settings: ServerConnection.ISettings | undefined;
  private _changed = new Signal<this, void>(this);

  constructor(settings?: ServerConnection.ISettings) {
    this.settings = settings;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  protected emit(): void {
    this._changed.emit();
  }
}

/** `name:version`, the key of a version's release state. */
export function versionKey(name: string, version: number): string {
  return `${name}:${version}`;
}

/** The version a candidate is compared with: the champion's, else the version before it (null: none). */
export function baselineOf(v: Mlops.ModelVersion, versions: Mlops.ModelVersion[]): number | null {
  const champion = versions.find(o => o.name === v.name && o.aliases.includes('champion'));
  if (champion && champion.version !== v.version) {
    return champion.version;
  }
  const older = versions.filter(o => o.name === v.name && o.version < v.version).map(o => o.version);
  return older.length ? Math.max(...older) : null;
}

/** The Models panel: versions matching the filter, one page at a time; messages for refused changes. */
export class ModelsModel extends Model {
  versions: Mlops.ModelVersion[] = [];
  /** Each listed version's gate verdict and approval state, by `name:version` (absent until read). */
  release: Record<string, Mlops.ReleaseState> = {};
  filter = '';
  includeArchived = false;
  /** A filter the server refused (shown under the filter box). */
  filterError = '';
  /** The outcome of the last change (a refusal is `kind: 'error'`). */
  message: { kind: 'error' | 'info'; text: string } | null = null;
  loading = false;
  page = 0;
  private _request = 0;

  get current(): { items: Mlops.ModelVersion[]; page: number; pages: number } {
    return paginate(this.versions, this.page);
  }

  get modelCount(): number {
    return new Set(this.versions.map(v => v.name)).size;
  }

  async refresh(): Promise<void> {
    const request = ++this._request;
    this.loading = true;
    this.emit();
    try {
      const result = await api.listModelVersions(
        { filter: this.filter, includeArchived: this.includeArchived },
        this.settings
      );
      if (request !== this._request) {
        return; // a newer filter was applied meanwhile
      }
      this.versions = result.versions;
      this.filterError = '';
      this.page = Math.min(this.page, this.current.pages - 1);
      const release = await this.readRelease(this.versions);
      if (request !== this._request) {
        return;
      }
      this.release = release;
    } catch (error) {
      if (request !== this._request) {
        return;
      }
      if (error instanceof api.MlopsApiError && error.status === 400) {
        this.filterError = error.message;
      } else {
        this.message = { kind: 'error', text: api.errorMessage(error) };
      }
      this.versions = [];
    } finally {
      if (request === this._request) {
        this.loading = false;
        this.emit();
      }
    }
  }

  /** The release state of every version of the models listed: one request per model. */
  private async readRelease(versions: Mlops.ModelVersion[]): Promise<Record<string, Mlops.ReleaseState>> {
    const names = [...new Set(versions.map(v => v.name))];
    const lists = await Promise.all(
      names.map(name => api.getModelRelease(name, this.settings).catch(() => ({ versions: [] })))
    );
    const release: Record<string, Mlops.ReleaseState> = {};
    for (const list of lists) {
      for (const state of list.versions) {
        release[versionKey(state.model, state.version)] = state;
      }
    }
    return release;
  }

  releaseOf(v: Mlops.ModelVersion): Mlops.ReleaseState | undefined {
    return this.release[versionKey(v.name, v.version)];
  }

  /** Request an approval, approve or reject, with the reviewer's text. */
  async decide(
    name: string,
    version: number,
    verb: 'approval' | 'approve' | 'reject',
    text: string | null
  ): Promise<boolean> {
    const done = { approval: 'Approval requested for', approve: 'Approved', reject: 'Rejected' }[verb];
    return this.change(async () => {
      await api.decide(name, version, verb, text || null, this.settings);
      return `${done} ${name}:${version}.`;
    });
  }

  /** Promote under the release policy; a refusal is shown with what is missing. */
  async promote(name: string, version: number, alias: string, reason: string | null): Promise<boolean> {
    return this.change(async () => {
      const done = await api.promoteVersion(name, version, alias.trim(), reason || null, this.settings);
      const before = done.previous_version === null ? 'nothing' : `version ${done.previous_version}`;
      return done.moved
        ? `${name}@${done.alias} now points at version ${version} (was ${before}).`
        : `${name}@${done.alias} already pointed at version ${version}.`;
    });
  }

  applyFilter(filter: string, includeArchived = this.includeArchived): Promise<void> {
    this.filter = filter.trim();
    this.includeArchived = includeArchived;
    this.page = 0;
    return this.refresh();
  }

  setPage(page: number): void {
    this.page = paginate(this.versions, page).page;
    this.emit();
  }

  dismissMessage(): void {
    this.message = null;
    this.emit();
  }

  async setAlias(name: string, alias: string, version: number): Promise<boolean> {
    return this.change(async () => {
      await api.setModelAlias(name, alias.trim(), version, this.settings);
      return `${name}@${alias.trim()} now points at version ${version}.`;
    });
  }

  async deleteVersion(name: string, version: number): Promise<boolean> {
    return this.change(async () => {
      await api.deleteModelVersion(name, version, {}, this.settings);
      return `Deleted ${name}:${version}.`;
    });
  }

  private async change(action: () => Promise<string>): Promise<boolean> {
    try {
      this.message = { kind: 'info', text: await action() };
      await this.refresh();
      return true;
    } catch (error) {
      this.message = { kind: 'error', text: api.errorMessage(error) };
      this.emit();
      return false;
    }
  }
}

/** The Jobs panel: recent runs, optionally of one experiment. */
export class RunsModel extends Model {
  runs: Mlops.Run[] = [];
  experiment = '';
  experiments: string[] = [];
  error = '';
  /** The outcome of the last registration. */
  message: { kind: 'error' | 'info'; text: string } | null = null;
  loading = false;
  maxResults = 100;

  /** Register the model a run logged (artifact `path`, MLflow's default `model`) as the next version of `name`. */
  async register(runId: string, name: string, path = 'model'): Promise<Mlops.ModelVersion | null> {
    try {
      const source = `runs:/${runId}/${path.replace(/^\/+/, '')}`;
      const version = await api.registerModelVersion(name.trim(), { source }, this.settings);
      this.message = { kind: 'info', text: `Registered ${version.name}:${version.version} from ${source}.` };
      return version;
    } catch (error) {
      this.message = { kind: 'error', text: api.errorMessage(error) };
      return null;
    } finally {
      this.emit();
    }
  }

  dismissMessage(): void {
    this.message = null;
    this.emit();
  }

  async refresh(): Promise<void> {
    this.loading = true;
    this.emit();
    try {
      const result = await api.listRuns(
        { experiment: this.experiment || undefined, maxResults: this.maxResults },
        this.settings
      );
      this.runs = result.runs;
      this.error = '';
      const seen = new Set([...this.experiments, ...this.runs.map(r => r.experiment)]);
      this.experiments = [...seen].sort();
    } catch (error) {
      this.error = api.errorMessage(error);
      this.runs = [];
    } finally {
      this.loading = false;
      this.emit();
    }
  }

  setExperiment(experiment: string): Promise<void> {
    this.experiment = experiment;
    return this.refresh();
  }
}

/** The Events feed: the newest first, at most `limit` kept. */
export class EventsModel extends Model {
  events: Mlops.CloudEvent[] = [];
  connected = false;
  readonly limit = 200;
  private _received = new Signal<this, Mlops.CloudEvent>(this);
  private _source: EventSource | null = null;

  get received(): ISignal<this, Mlops.CloudEvent> {
    return this._received;
  }

  /** Add an event (ignoring one already seen, e.g. replayed after a reconnection); `live` ones are signalled. */
  add(event: Mlops.CloudEvent, live = true): void {
    if (this.events.some(e => e.id === event.id)) {
      return;
    }
    this.events = [event, ...this.events].slice(0, this.limit);
    if (live) {
      this._received.emit(event);
    }
    this.emit();
  }

  /** The events the server kept from before this page opened: shown in the feed, not signalled again. */
  async loadRecent(): Promise<void> {
    try {
      const { events } = await api.recentEvents({ limit: this.limit }, this.settings);
      for (const event of events) {
        this.add(event, false);
      }
    } catch {
      // the stream's connection state already tells the user
    }
  }

  /** Open the stream (the browser reconnects by itself, sending Last-Event-ID). */
  connect(factory: (url: string) => EventSource = url => new EventSource(url, { withCredentials: true })): void {
    if (this._source) {
      return;
    }
    const source = (this._source = factory(api.eventsURL(this.settings)));
    source.onopen = () => {
      this.connected = true;
      this.emit();
    };
    source.onerror = () => {
      this.connected = false;
      this.emit();
    };
    source.onmessage = (message: MessageEvent) => {
      try {
        this.add(JSON.parse(message.data) as Mlops.CloudEvent);
      } catch {
        // not an event: ignore
      }
    };
  }

  dispose(): void {
    this._source?.close();
    this._source = null;
  }
}
