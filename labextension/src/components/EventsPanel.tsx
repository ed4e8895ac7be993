import React from 'react';

import { EventsModel, formatTime } from '../model';
import { useModel } from './hooks';

export function EventsPanel(props: { model: EventsModel }): JSX.Element {
  const model = useModel(props.model);
  return (
    <div className="jp-mlops-panel jp-mlops-events">
      <div className="jp-mlops-summary">
        <span className={`jp-mlops-dot ${model.connected ? 'jp-mlops-dot-on' : ''}`} />
        {model.connected ? 'Live' : 'Connecting…'}
      </div>
      <div className="jp-mlops-list">
        {model.events.map(event => (
          <div className="jp-mlops-row jp-mlops-event" key={event.id} data-type={event.type}>
            <span className="jp-mlops-event-time">{formatTime(event.time)}</span>
            <span className={`jp-mlops-chip jp-mlops-event-type jp-mlops-event-${event.type.split('.')[1] ?? ''}`}>
              {event.type}
            </span>
            {event.type === 'automation.ran' ? (
              <AutomationRan data={event.data} />
            ) : (
              <span className="jp-mlops-event-subject">{describeEvent(event.data, event.subject)}</span>
            )}
          </div>
        ))}
        {!model.events.length && <div className="jp-mlops-empty">No events since JupyterLab started.</div>}
      </div>
    </div>
  );
}

/** One line about an event, from the payload the core logged (Azure's field names for models). */
export function describeEvent(data: Record<string, unknown>, subject: string | null): string {
  if (typeof data.modelName === 'string') {
    if (Array.isArray(data.modelVersions)) {
      return `${data.modelName}:${data.modelVersions.join(', ')}`;
    }
    const alias = typeof data.alias === 'string' ? `@${data.alias} → ` : '';
    return `${alias}${data.modelName}:${typeof data.modelVersion === 'string' ? data.modelVersion : '(removed)'}`;
  }
  if (typeof data.run_id === 'string') {
    return `${data.name ?? data.run_id} (${data.experiment})`;
  }
  if (typeof data.endpointName === 'string') {
    return typeof data.deploymentName === 'string' ? `${data.endpointName}/${data.deploymentName}` : data.endpointName;
  }
  if (typeof data.dataDriftName === 'string') {
    return `monitor ${data.dataDriftName}`;
  }
  return subject ?? '';
}

export interface IAutomationRan {
  automation: string;
  /** The kind of action: pipeline, evaluate, promote, rollout or notify ('' when it did not get that far). */
  action: string;
  status: string;
  /** What the action started or did, e.g. `rollout #3 of churn-api (running)`, or why it failed or skipped. */
  started: string;
}

/** What an `automation.ran` event says, from the action's result (its keys tell the kind of action). */
export function describeAutomationRan(data: Record<string, unknown>): IAutomationRan {
  const result = (data.result ?? {}) as Record<string, unknown>;
  const has = (key: string) => result[key] !== undefined && result[key] !== null;
  let action = '';
  let started = '';
  if (has('rollout_id')) {
    action = 'rollout';
    started = `rollout #${result.rollout_id} of ${result.endpoint} (${result.state})`;
  } else if (has('pipeline_run_id')) {
    action = 'pipeline';
    started = `pipeline run ${String(result.pipeline_run_id).slice(0, 8)} (${result.status})`;
  } else if (has('candidate')) {
    action = 'evaluate';
    started = `gate of ${result.candidate}: ${result.passed ? 'passed' : 'failed'}`;
  } else if (has('alias')) {
    action = 'promote';
    started = `${result.model}:${result.version} is @${result.alias}`;
  } else if (has('message')) {
    action = 'notify';
    started = String(result.message);
  }
  const reason = typeof data.reason === 'string' ? data.reason : '';
  return {
    automation: typeof data.automation === 'string' ? data.automation : '?',
    action,
    status: typeof data.status === 'string' ? data.status : '?',
    started: started || reason
  };
}

function AutomationRan(props: { data: Record<string, unknown> }): JSX.Element {
  const ran = describeAutomationRan(props.data);
  const failed = ran.status === 'failed';
  return (
    <span className="jp-mlops-event-subject jp-mlops-event-automation" title={ran.started}>
      <span className="jp-mlops-event-automation-name">{ran.automation}</span>
      {ran.action && <span className="jp-mlops-muted">{ran.action}</span>}
      <span className={`jp-mlops-chip${failed ? ' jp-mlops-event-failed' : ''}`}>{ran.status}</span>
      {ran.started && <span className="jp-mlops-muted jp-mlops-event-started">{ran.started}</span>}
    </span>
  );
}
