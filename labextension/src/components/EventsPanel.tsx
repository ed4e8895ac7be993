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
            <span className="jp-mlops-event-subject">{describe(event.data, event.subject)}</span>
          </div>
        ))}
        {!model.events.length && <div className="jp-mlops-empty">No events since JupyterLab started.</div>}
      </div>
    </div>
  );
}

function describe(data: Record<string, unknown>, subject: string | null): string {
  if (typeof data.name === 'string' && data.version !== undefined) {
    const alias = typeof data.alias === 'string' ? `@${data.alias} → ` : '';
    return `${alias}${data.name}:${data.version ?? '(removed)'}`;
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
