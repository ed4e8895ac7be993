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
            <span className="jp-mlops-event-subject">{describeEvent(event.data, event.subject)}</span>
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
