import React, { useEffect, useRef } from 'react';

import * as api from '../api';
import {
  EndpointsModel,
  formatGuard,
  formatLatency,
  formatRate,
  formatResources,
  guardFigures,
  POLL_MS,
  rolloutActive,
  rolloutProgress
} from '../endpoints';
import { Mlops } from '../tokens';
import { ErrorNote, RefreshButton, StatusNote } from './common';
import { useModel } from './hooks';

/** `shown()` says whether a person can see the panel: the live figures are read only then; `dashboard` opens an
 * endpoint's dashboard in a tab. */
export function EndpointsPanel(props: {
  model: EndpointsModel;
  shown: () => boolean;
  dashboard?: (endpoint: string) => void;
}): JSX.Element {
  const model = useModel(props.model);
  const { shown } = props;
  useEffect(() => {
    const timer = window.setInterval(() => {
      if (!document.hidden && shown() && model.endpoints.length) {
        void model.refresh();
      }
    }, POLL_MS);
    return () => window.clearInterval(timer);
  }, [model, shown]);
  return (
    <div className="jp-mlops-panel jp-mlops-endpoints">
      <div className="jp-mlops-toolbar">
        <span className="jp-mlops-grow jp-mlops-muted">
          {model.endpoints.length} endpoint{model.endpoints.length === 1 ? '' : 's'} · live figures every{' '}
          {POLL_MS / 1000} s
        </span>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorNote error={model.error} />
      <StatusNote message={model.deployMessage} onDismiss={() => model.dismissDeployMessage()} />
      <div className="jp-mlops-list">
        {model.endpoints.map(endpoint => (
          <EndpointCard key={endpoint.name} endpoint={endpoint} model={model} dashboard={props.dashboard} />
        ))}
        {!model.loading && !model.endpoints.length && !model.error && (
          <div className="jp-mlops-empty">
            No endpoints yet: create one with mlops.endpoints.create("name"), then deploy a model version from the
            Models panel.
          </div>
        )}
      </div>
    </div>
  );
}

function EndpointCard(props: {
  endpoint: Mlops.Endpoint;
  model: EndpointsModel;
  dashboard?: (endpoint: string) => void;
}): JSX.Element {
  const { endpoint, model } = props;
  const state = model.state(endpoint);
  const problem = model.problem(endpoint);
  const edited = model.edited(endpoint);
  const selected = model.selected === endpoint.name;
  const rollout = model.rollout(endpoint);
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (selected) {
      ref.current?.scrollIntoView({ block: 'nearest' });
    }
  }, [selected]);
  return (
    <div
      ref={ref}
      className={`jp-mlops-card${selected ? ' jp-mlops-selected' : ''}`}
      data-endpoint={endpoint.name}
      onClick={() => selected && model.select('')}
    >
      <div className="jp-mlops-card-head">
        <span
          className={`jp-mlops-status jp-mlops-status-${endpoint.status === 'running' ? 'finished' : 'failed'}`}
          title={endpoint.status}
        />
        <span className="jp-mlops-card-name">{endpoint.name}</span>
        <span className="jp-mlops-chip">{endpoint.status}</span>
        <span className="jp-mlops-chip" title="How callers authenticate">
          {endpoint.auth === 'key' ? 'key' : 'no auth'}
        </span>
      </div>
      {endpoint.scoring_uri && (
        <div className="jp-mlops-uri" title="Scoring URI">
          {endpoint.scoring_uri}
        </div>
      )}
      {endpoint.note && <div className="jp-mlops-muted jp-mlops-note">{endpoint.note}</div>}
      {rollout && <RolloutBox endpoint={endpoint} rollout={rollout} model={model} />}
      <form
        className="jp-mlops-split"
        onSubmit={e => {
          e.preventDefault();
          void model.apply(endpoint);
        }}
      >
        <div className="jp-mlops-split-head">
          <span>Deployment</span>
          <span title="Share of live requests (all deployments add up to 100)">Traffic</span>
          <span title="Share of requests copied to this deployment, answers discarded (one, at most 50)">Mirror</span>
        </div>
        {endpoint.deployments.map(d => (
          <DeploymentRow key={d.name} endpoint={endpoint} deployment={d} model={model} />
        ))}
        {!endpoint.deployments.length && (
          <div className="jp-mlops-empty">No deployment: use “deploy” on a model version in the Models panel.</div>
        )}
        {endpoint.deployments.length > 0 && (
          <div className="jp-mlops-split-foot">
            <span
              className={`jp-mlops-grow ${problem ? 'jp-mlops-invalid' : 'jp-mlops-muted'}`}
              role={problem ? 'alert' : undefined}
            >
              {problem ?? (edited ? 'Ready to apply.' : 'Traffic adds up to 100%.')}
            </span>
            {edited && (
              <button type="button" className="jp-mlops-button" onClick={() => model.resetDraft(endpoint)}>
                Reset
              </button>
            )}
            <button
              type="submit"
              className="jp-mlops-button jp-mlops-button-accept"
              disabled={!!problem || !edited || state.applying}
            >
              {state.applying ? 'Applying…' : 'Apply'}
            </button>
          </div>
        )}
      </form>
      <StatusNote message={state.message} />
      <TestRequest endpoint={endpoint} model={model} />
      <div className="jp-mlops-logs">
        {state.logs === null ? (
          <>
            <button className="jp-mlops-link" onClick={() => void model.loadLogs(endpoint)}>
              Show logs
            </button>
            {props.dashboard && (
              <button
                className="jp-mlops-link"
                title="Request rate, errors, latency and the traffic split over time, in a tab"
                onClick={() => props.dashboard?.(endpoint.name)}
              >
                Dashboard
              </button>
            )}
          </>
        ) : (
          <>
            <div className="jp-mlops-logs-bar">
              <select
                className="jp-mlops-input jp-mlops-select"
                aria-label="Whose log"
                value={state.logsOf}
                onChange={e => void model.loadLogs(endpoint, e.target.value)}
              >
                <option value="">router log</option>
                {endpoint.deployments.map(d => (
                  <option key={d.name} value={d.name}>
                    {d.name} log
                  </option>
                ))}
              </select>
              <button className="jp-mlops-link" onClick={() => void model.loadLogs(endpoint)}>
                reload
              </button>
              <button className="jp-mlops-link" onClick={() => model.hideLogs(endpoint)}>
                hide
              </button>
            </div>
            <pre className="jp-mlops-code jp-mlops-log-text">{state.logs}</pre>
          </>
        )}
      </div>
    </div>
  );
}

/** The endpoint's rollout: steps done, current share, state, guards (figure vs threshold) and its verbs. */
function RolloutBox(props: { endpoint: Mlops.Endpoint; rollout: api.Rollout; model: EndpointsModel }): JSX.Element {
  const { endpoint, rollout, model } = props;
  const { done, total, percent } = rolloutProgress(rollout);
  const busy = model.state(endpoint).rolloutBusy;
  const active = rolloutActive(rollout);
  return (
    <div className={`jp-mlops-rollout jp-mlops-rollout-${rollout.state}`} data-rollout={rollout.id}>
      <div className="jp-mlops-rollout-head">
        <span className="jp-mlops-rollout-title" title={rollout.model ?? ''}>
          Rollout of {rollout.deployment}
        </span>
        <span className="jp-mlops-chip jp-mlops-rollout-state">{rollout.state.replace('_', ' ')}</span>
        <span className="jp-mlops-grow jp-mlops-muted">
          step {rollout.step}/{total} · {percent}% live
        </span>
      </div>
      <div
        className="jp-mlops-rollout-bar"
        role="progressbar"
        aria-label={`Rollout of ${rollout.deployment}`}
        aria-valuemin={0}
        aria-valuemax={total}
        aria-valuenow={done}
        title={`${done} of ${total} steps done; steps ${rollout.steps.join(' → ')}%`}
      >
        <span className="jp-mlops-rollout-fill" style={{ width: `${total ? (100 * done) / total : 0}%` }} />
        <span className="jp-mlops-rollout-traffic" style={{ width: `${percent}%` }} />
      </div>
      <div className="jp-mlops-rollout-guards">
        {guardFigures(rollout).map(g => (
          <span
            key={g.guard}
            className={`jp-mlops-rollout-guard${g.ok === false && g.guard !== 'min_requests' ? ' jp-mlops-rollout-tripped' : ''}`}
            data-guard={g.guard}
            title={g.guard === 'min_requests' ? 'requests in the step, needed' : 'figure in the step vs threshold'}
          >
            {g.guard} {formatGuard(g.guard, g.figure)} / {formatGuard(g.guard, g.threshold)}
          </span>
        ))}
      </div>
      {rollout.reason && <div className="jp-mlops-muted jp-mlops-note">{rollout.reason}</div>}
      {active && (
        <div className="jp-mlops-rollout-actions">
          {(rollout.state === 'running' || rollout.state === 'shadow') && (
            <button
              className="jp-mlops-button"
              disabled={busy}
              onClick={() => void model.rolloutVerb(endpoint, 'pause')}
            >
              Pause
            </button>
          )}
          {rollout.state === 'paused' && (
            <button
              className="jp-mlops-button"
              disabled={busy}
              onClick={() => void model.rolloutVerb(endpoint, 'resume')}
            >
              Resume
            </button>
          )}
          <button
            className="jp-mlops-button jp-mlops-button-reject"
            disabled={busy || rollout.state === 'aborting'}
            onClick={() => void model.rolloutVerb(endpoint, 'abort')}
          >
            {busy ? 'Working…' : 'Abort'}
          </button>
        </div>
      )}
    </div>
  );
}

function DeploymentRow(props: {
  endpoint: Mlops.Endpoint;
  deployment: Mlops.Deployment;
  model: EndpointsModel;
}): JSX.Element {
  const { endpoint, deployment: d, model } = props;
  const { draft } = model.state(endpoint);
  const live = d.live;
  return (
    <div className="jp-mlops-deployment" data-deployment={d.name}>
      <span className="jp-mlops-deployment-main">
        <span className="jp-mlops-deployment-name" title={d.error ?? d.status}>
          <span
            className={`jp-mlops-status jp-mlops-status-${d.status === 'active' ? 'finished' : d.status === 'failed' ? 'failed' : 'running'}`}
          />
          {d.name}
        </span>
        <span
          className="jp-mlops-muted"
          title={d.requested && d.requested !== d.model ? `asked for ${d.requested}` : ''}
        >
          {d.model}
          {d.runs_in && d.runs_in !== 'router' ? ` · ${d.runs_in}${d.environment ? ` ${d.environment}` : ''}` : ''}
        </span>
        {formatResources(d) && (
          <span className="jp-mlops-muted jp-mlops-resources" title={d.limits ?? ''}>
            {formatResources(d)}
          </span>
        )}
      </span>
      <PercentInput
        label={`Traffic of ${d.name}`}
        value={draft.traffic[d.name] ?? '0'}
        onChange={text => model.setShare(endpoint, 'traffic', d.name, text)}
      />
      <PercentInput
        label={`Mirror share of ${d.name}`}
        value={draft.mirror[d.name] ?? '0'}
        max={50}
        onChange={text => model.setShare(endpoint, 'mirror', d.name, text)}
      />
      <span className="jp-mlops-live" title="Request rate; latency median and 99th percentile (from /metrics)">
        <span className="jp-mlops-live-rate">{formatRate(live)}</span>
        <span>p50 {formatLatency(live?.p50_ms)}</span>
        <span>p99 {formatLatency(live?.p99_ms)}</span>
      </span>
      {d.error && <span className="jp-mlops-deployment-error">{d.error}</span>}
    </div>
  );
}

function PercentInput(props: {
  label: string;
  value: string;
  max?: number;
  onChange: (text: string) => void;
}): JSX.Element {
  return (
    <span className="jp-mlops-percent">
      <input
        className="jp-mlops-input"
        type="number"
        min={0}
        max={props.max ?? 100}
        step={1}
        inputMode="numeric"
        aria-label={props.label}
        value={props.value}
        onChange={e => props.onChange(e.target.value)}
      />
      %
    </span>
  );
}

function TestRequest(props: { endpoint: Mlops.Endpoint; model: EndpointsModel }): JSX.Element {
  const { endpoint, model } = props;
  const state = model.state(endpoint);
  return (
    <details className="jp-mlops-test">
      <summary>Test request</summary>
      <textarea
        className="jp-mlops-input jp-mlops-code jp-mlops-body"
        aria-label={`Test request body for ${endpoint.name}`}
        spellCheck={false}
        rows={4}
        value={state.body}
        onChange={e => model.setBody(endpoint, e.target.value)}
      />
      <div className="jp-mlops-test-bar">
        <select
          className="jp-mlops-input jp-mlops-select"
          aria-label="Deployment to score with"
          value={state.deployment}
          onChange={e => model.setBody(endpoint, state.body, e.target.value)}
        >
          <option value="">by traffic</option>
          {endpoint.deployments.map(d => (
            <option key={d.name} value={d.name}>
              {d.name}
            </option>
          ))}
        </select>
        <button
          className="jp-mlops-button jp-mlops-button-accept"
          disabled={state.sending}
          onClick={() => void model.invoke(endpoint)}
        >
          {state.sending ? 'Sending…' : 'Send'}
        </button>
      </div>
      {state.response && (
        <pre
          className={`jp-mlops-code jp-mlops-response${state.response.ok ? '' : ' jp-mlops-response-error'}`}
          aria-label="Response"
        >
          {state.response.text}
        </pre>
      )}
    </details>
  );
}
