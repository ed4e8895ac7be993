/**
 * The state of the Endpoints panel: endpoints refreshed every few seconds (live figures), the traffic and mirror
 * a person is editing (checked here before anything is sent), test requests and logs, and each endpoint's active or
 * recent rollout with its verbs. No DOM here.
 */
import * as api from './api';
import { Model } from './model';
import { Mlops } from './tokens';

export const POLL_MS = 5000;
/** How long an ended rollout stays on its endpoint's card. */
export const RECENT_ROLLOUT_MS = 30 * 60 * 1000;
const ACTIVE_STATES = ['shadow', 'running', 'paused', 'aborting'];

/** What a person typed in the percentage boxes, per deployment. */
export type Shares = Record<string, string>;

export interface IDraft {
  traffic: Shares;
  mirror: Shares;
}

/** An integer percentage from 0 to 100, or null for anything else ('' counts as 0). */
export function parsePercent(text: string): number | null {
  const trimmed = text.trim();
  if (trimmed === '') {
    return 0;
  }
  if (!/^\d{1,3}$/.test(trimmed)) {
    return null;
  }
  const value = Number(trimmed);
  return value <= 100 ? value : null;
}

/** Why the traffic split cannot be applied (the server's rules: integers 0–100 summing to 100, or all 0), or null. */
export function trafficProblem(traffic: Shares): string | null {
  let total = 0;
  for (const [name, text] of Object.entries(traffic)) {
    const value = parsePercent(text);
    if (value === null) {
      return `Traffic of ${name} must be a whole number from 0 to 100, not "${text}".`;
    }
    total += value;
  }
  if (total !== 100 && total !== 0) {
    return `Traffic must add up to 100% (now ${total}%).`;
  }
  return null;
}

/** Why the mirror cannot be applied (one deployment at most, at most 50%, one that gets no live traffic), or null. */
export function mirrorProblem(mirror: Shares, traffic: Shares): string | null {
  const mirrored: string[] = [];
  for (const [name, text] of Object.entries(mirror)) {
    const value = parsePercent(text);
    if (value === null || value > 50) {
      return `Mirror share of ${name} must be a whole number from 0 to 50, not "${text}".`;
    }
    if (value > 0) {
      mirrored.push(name);
      if ((parsePercent(traffic[name] ?? '') ?? 0) > 0) {
        return `${name} gets live traffic: a deployment is either live or mirrored.`;
      }
    }
  }
  if (mirrored.length > 1) {
    return `Only one deployment can be mirrored (now ${mirrored.join(', ')}).`;
  }
  return null;
}

/** The draft as numbers, for the PATCH body. */
export function toPercentages(shares: Shares): Record<string, number> {
  return Object.fromEntries(Object.entries(shares).map(([name, text]) => [name, parsePercent(text) ?? 0]));
}

/** The endpoint's current split as a draft (every deployment present, 0 when unset). */
export function draftOf(endpoint: Mlops.Endpoint): IDraft {
  const shares = (values: Record<string, number>) =>
    Object.fromEntries(endpoint.deployments.map(d => [d.name, String(values[d.name] ?? 0)]));
  return { traffic: shares(endpoint.traffic), mirror: shares(endpoint.mirror) };
}

export function sameShares(a: Shares, b: Shares): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].every(k => (parsePercent(a[k] ?? '') ?? -1) === (parsePercent(b[k] ?? '') ?? -1));
}

/** `12.3 req/s`, `0.05 req/s`, or `–` before the second reading. */
export function formatRate(live: Mlops.Live | null | undefined): string {
  if (!live || live.rate_per_s === null) {
    return '– req/s';
  }
  const rate = live.rate_per_s;
  return `${rate >= 10 ? rate.toFixed(0) : rate >= 0.1 ? rate.toFixed(1) : rate.toFixed(2)} req/s`;
}

/** `3.2 ms`, `120 ms`, `1.5 s`, or `–` when nothing was scored yet. */
export function formatLatency(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) {
    return '–';
  }
  if (ms >= 1000) {
    return `${(ms / 1000).toFixed(1)} s`;
  }
  return ms >= 10 ? `${Math.round(ms)} ms` : `${ms.toFixed(1)} ms`;
}

/**
 * What a deployment was given and where it infers: `2 cpu · 2Gi · GPU`, `1 cpu · CPU (GPU preferred)`; '' when it
 * was given nothing.
 */
export function formatResources(d: Mlops.Deployment): string {
  const given = (d.resources ?? {}) as Record<string, unknown>;
  const parts: string[] = [];
  if (given.cpu !== undefined && given.cpu !== null) {
    parts.push(`${given.cpu} cpu`);
  }
  if (given.memory !== undefined && given.memory !== null) {
    parts.push(String(given.memory));
  }
  if (d.provider === 'CUDAExecutionProvider' || d.provider === 'cuda') {
    parts.push(given.gpu === 'prefer' || given.gpu === 1 ? 'GPU' : `${given.gpu} GPUs`);
  } else if (given.gpu === 'prefer') {
    parts.push('CPU (GPU preferred)');
  }
  return parts.join(' · ');
}

/** A deployment name the server accepts, from a model name: `Churn_Model` → `churn-model`. */
export function suggestDeploymentName(model: string, version: number): string {
  const base = model
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
  return `${base || 'model'}-v${version}`.slice(0, 63);
}

/** A first test request body for an endpoint: MLflow's `inputs` format. */
export const EXAMPLE_BODY = '{\n  "inputs": [[0.1, 0.2, 0.3, 0.4]]\n}';

/** Whether the rollout is still moving traffic (or about to roll back). */
export function rolloutActive(rollout: api.Rollout): boolean {
  return ACTIVE_STATES.includes(rollout.state);
}

/** Whether the card shows the rollout: an active one, or one that ended less than `RECENT_ROLLOUT_MS` ago. */
export function rolloutShown(rollout: api.Rollout, now = Date.now()): boolean {
  if (rolloutActive(rollout)) {
    return true;
  }
  return !!rollout.ended_at && now - Date.parse(rollout.ended_at) < RECENT_ROLLOUT_MS;
}

/** Steps done out of all (the current one counts once it completed), and the current share of live traffic. */
export function rolloutProgress(rollout: api.Rollout): { done: number; total: number; percent: number } {
  const total = rollout.steps.length;
  const done = rollout.state === 'completed' ? total : Math.max(0, rollout.step - 1);
  const percent = rolloutActive(rollout) || rollout.state === 'completed' ? rollout.percent : 0;
  return { done, total, percent };
}

export interface IGuardFigure {
  guard: string;
  figure: number | null;
  threshold: number;
  ok: boolean | null;
}

/** Each guard with the deployment's figure over the current step (null before the first reading). */
export function guardFigures(rollout: api.Rollout): IGuardFigure[] {
  const green = ((rollout.figures ?? {}) as Record<string, unknown>).green as Record<string, unknown> | undefined;
  return Object.entries(rollout.guards).map(([guard, threshold]) => {
    const raw = green?.[guard === 'min_requests' ? 'requests' : guard];
    const figure = typeof raw === 'number' ? raw : null;
    const ok = figure === null ? null : guard === 'min_requests' ? figure >= threshold : figure <= threshold;
    return { guard, figure, threshold, ok };
  });
}

/** `0.4%`, `12 ms`, `250 req`: a guard's figure or threshold in its unit. */
export function formatGuard(guard: string, value: number | null): string {
  if (value === null) {
    return '–';
  }
  if (guard === 'error_rate') {
    return `${(value * 100).toFixed(value < 0.01 ? 2 : 1)}%`;
  }
  if (guard === 'p99_ms') {
    return formatLatency(value);
  }
  return `${Math.round(value)} req`;
}

interface IEndpointState {
  draft: IDraft;
  message: { kind: 'error' | 'info'; text: string } | null;
  applying: boolean;
  body: string;
  deployment: string;
  response: { ok: boolean; text: string } | null;
  sending: boolean;
  logs: string | null;
  /** Whose log: '' for the router, else a deployment. */
  logsOf: string;
  /** A rollout verb under way. */
  rolloutBusy: boolean;
}

export class EndpointsModel extends Model {
  endpoints: Mlops.Endpoint[] = [];
  error = '';
  loading = false;
  /** The endpoint to scroll to and highlight (set by a notification's action). */
  selected = '';
  /** The outcome of the last deployment started from the Models panel. */
  deployMessage: { kind: 'error' | 'info'; text: string } | null = null;
  /** Each endpoint's latest rollout. */
  rollouts = new Map<string, api.Rollout>();
  private _state = new Map<string, IEndpointState>();

  /** The rollout the card of `endpoint` shows, or null. */
  rollout(endpoint: Mlops.Endpoint): api.Rollout | null {
    const rollout = this.rollouts.get(endpoint.name);
    return rollout && rolloutShown(rollout) ? rollout : null;
  }

  /** The editable state of one endpoint (the draft starts as its current split). */
  state(endpoint: Mlops.Endpoint): IEndpointState {
    let state = this._state.get(endpoint.name);
    if (!state) {
      state = {
        draft: draftOf(endpoint),
        message: null,
        applying: false,
        body: EXAMPLE_BODY,
        deployment: '',
        response: null,
        sending: false,
        logs: null,
        logsOf: '',
        rolloutBusy: false
      };
      this._state.set(endpoint.name, state);
    }
    return state;
  }

  /** Whether the draft differs from what the endpoint has. */
  edited(endpoint: Mlops.Endpoint): boolean {
    const current = draftOf(endpoint);
    const { draft } = this.state(endpoint);
    return !sameShares(current.traffic, draft.traffic) || !sameShares(current.mirror, draft.mirror);
  }

  /** The reason the draft cannot be applied, or null. */
  problem(endpoint: Mlops.Endpoint): string | null {
    const { draft } = this.state(endpoint);
    return trafficProblem(draft.traffic) ?? mirrorProblem(draft.mirror, draft.traffic);
  }

  async refresh(): Promise<void> {
    this.loading = true;
    this.emit();
    try {
      const previous = new Map(this.endpoints.map(e => [e.name, e]));
      const [endpoints, rollouts] = await Promise.all([
        api.listEndpoints(this.settings),
        api.listRollouts({}, this.settings).catch(() => null) // a server without rollouts: the cards without them
      ]);
      this.endpoints = endpoints.endpoints;
      this.rollouts = new Map();
      for (const rollout of rollouts?.rollouts ?? []) {
        if (!this.rollouts.has(rollout.endpoint)) {
          this.rollouts.set(rollout.endpoint, rollout); // newest first
        }
      }
      this.error = '';
      for (const endpoint of this.endpoints) {
        const before = previous.get(endpoint.name);
        // a draft nobody touched follows the endpoint (a change made elsewhere, a new deployment)
        if (!before || !this.edited(before) || !sameDeployments(before, endpoint)) {
          this.state(endpoint).draft = draftOf(endpoint);
        }
      }
    } catch (error) {
      this.error = api.errorMessage(error);
    } finally {
      this.loading = false;
      this.emit();
    }
  }

  /** Pause, resume or abort the endpoint's rollout; the card shows the record the server answers. */
  async rolloutVerb(endpoint: Mlops.Endpoint, verb: 'pause' | 'resume' | 'abort'): Promise<void> {
    const state = this.state(endpoint);
    state.rolloutBusy = true;
    this.emit();
    try {
      this.rollouts.set(endpoint.name, await api.rolloutVerb(endpoint.name, verb, this.settings));
      state.message = null;
      if (verb === 'abort') {
        await this.refresh(); // the traffic is back to the split from before
      }
    } catch (error) {
      state.message = { kind: 'error', text: `Could not ${verb} the rollout: ${api.errorMessage(error)}` };
    } finally {
      state.rolloutBusy = false;
      this.emit();
    }
  }

  setShare(endpoint: Mlops.Endpoint, kind: 'traffic' | 'mirror', deployment: string, text: string): void {
    const state = this.state(endpoint);
    state.draft = { ...state.draft, [kind]: { ...state.draft[kind], [deployment]: text } };
    state.message = null;
    this.emit();
  }

  resetDraft(endpoint: Mlops.Endpoint): void {
    const state = this.state(endpoint);
    state.draft = draftOf(endpoint);
    state.message = null;
    this.emit();
  }

  /** PATCH the draft (only what changed); the server applies it through the router before answering. */
  async apply(endpoint: Mlops.Endpoint): Promise<boolean> {
    const state = this.state(endpoint);
    const problem = this.problem(endpoint);
    if (problem) {
      state.message = { kind: 'error', text: problem };
      this.emit();
      return false;
    }
    const current = draftOf(endpoint);
    const body: Mlops.UpdateEndpointRequest = {};
    if (!sameShares(current.traffic, state.draft.traffic)) {
      body.traffic = toPercentages(state.draft.traffic);
    }
    if (!sameShares(current.mirror, state.draft.mirror)) {
      body.mirror = Object.fromEntries(Object.entries(toPercentages(state.draft.mirror)).filter(([, v]) => v > 0));
    }
    state.applying = true;
    this.emit();
    try {
      const updated = await api.updateEndpoint(endpoint.name, body, this.settings);
      this.endpoints = this.endpoints.map(e => (e.name === updated.name ? updated : e));
      state.draft = draftOf(updated);
      state.message = { kind: 'info', text: `Applied: ${describeSplit(updated)}.` };
      return true;
    } catch (error) {
      state.message = { kind: 'error', text: api.errorMessage(error) };
      return false;
    } finally {
      state.applying = false;
      this.emit();
    }
  }

  setBody(endpoint: Mlops.Endpoint, body: string, deployment = this.state(endpoint).deployment): void {
    const state = this.state(endpoint);
    state.body = body;
    state.deployment = deployment;
    this.emit();
  }

  /** Send the test request body (checked to be JSON first) and keep the answer or the error. */
  async invoke(endpoint: Mlops.Endpoint): Promise<void> {
    const state = this.state(endpoint);
    let data: unknown;
    try {
      data = JSON.parse(state.body);
    } catch (error) {
      state.response = { ok: false, text: `The body is not valid JSON: ${api.errorMessage(error)}` };
      this.emit();
      return;
    }
    state.sending = true;
    this.emit();
    try {
      const result = await api.invokeEndpoint(
        endpoint.name,
        { data, deployment: state.deployment || null },
        this.settings
      );
      state.response = { ok: true, text: JSON.stringify(result.response, null, 2) };
    } catch (error) {
      state.response = { ok: false, text: api.errorMessage(error) };
    } finally {
      state.sending = false;
      this.emit();
    }
  }

  /** The router's log, or one deployment's (its loading, failures and process output). */
  async loadLogs(endpoint: Mlops.Endpoint, deployment = this.state(endpoint).logsOf, lines = 200): Promise<void> {
    const state = this.state(endpoint);
    state.logsOf = deployment;
    try {
      const logs = await api.endpointLogs(endpoint.name, { deployment: deployment || undefined, lines }, this.settings);
      state.logs = logs.text || '(the log is empty)';
    } catch (error) {
      state.logs = api.errorMessage(error);
    }
    this.emit();
  }

  hideLogs(endpoint: Mlops.Endpoint): void {
    this.state(endpoint).logs = null;
    this.emit();
  }

  /** Deploy `model` (NAME:VERSION) to `endpoint` as `deployment`; the message says what happened. */
  async deploy(endpoint: string, deployment: string, model: string): Promise<Mlops.Deployment | null> {
    this.selected = endpoint;
    try {
      const created = await api.deployModel(endpoint, { name: deployment, model }, this.settings);
      this.deployMessage = {
        kind: 'info',
        text: `Deployed ${created.model} to ${endpoint}/${created.name} (${created.traffic}% of the traffic until you set it).`
      };
      await this.refresh();
      return created;
    } catch (error) {
      this.deployMessage = { kind: 'error', text: `Deploying ${model} to ${endpoint}: ${api.errorMessage(error)}` };
      this.emit();
      return null;
    }
  }

  dismissDeployMessage(): void {
    this.deployMessage = null;
    this.emit();
  }

  select(endpoint: string): void {
    this.selected = endpoint;
    this.emit();
  }
}

function sameDeployments(a: Mlops.Endpoint, b: Mlops.Endpoint): boolean {
  return a.deployments.map(d => d.name).join() === b.deployments.map(d => d.name).join();
}

/** `blue 90% · green 10% · mirror green-2 20%` */
export function describeSplit(endpoint: Mlops.Endpoint): string {
  const live = Object.entries(endpoint.traffic)
    .filter(([, v]) => v > 0)
    .map(([n, v]) => `${n} ${v}%`);
  const mirror = Object.entries(endpoint.mirror)
    .filter(([, v]) => v > 0)
    .map(([n, v]) => `mirror ${n} ${v}%`);
  return [...live, ...mirror].join(' · ') || 'no traffic';
}
