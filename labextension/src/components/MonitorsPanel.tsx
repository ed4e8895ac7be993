import React from 'react';

import { formatTime } from '../model';
import { describeResult, formatSchedule, MonitorsModel } from '../monitors';
import { ErrorNote, RefreshButton } from './common';
import { useModel } from './hooks';

export function MonitorsPanel(props: {
  model: MonitorsModel;
  openReport: (monitor: string) => void;
  dashboard?: (monitor: string) => void;
}): JSX.Element {
  const model = useModel(props.model);
  return (
    <div className="jp-mlops-panel jp-mlops-monitors">
      <div className="jp-mlops-toolbar">
        <span className="jp-mlops-grow jp-mlops-muted">
          {model.monitors.length} monitor{model.monitors.length === 1 ? '' : 's'}
        </span>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorNote error={model.error} />
      <div className="jp-mlops-list">
        {model.monitors.map(monitor => {
          const result = describeResult(monitor);
          const alerts = monitor.last_result?.alerts ?? [];
          return (
            <div
              className={`jp-mlops-row jp-mlops-monitor${model.selected === monitor.name ? ' jp-mlops-selected' : ''}`}
              key={monitor.name}
              data-monitor={monitor.name}
              data-result={result.kind}
            >
              <span className={`jp-mlops-status jp-mlops-drift-${result.kind}`} title={result.text} />
              <span className="jp-mlops-run-main">
                <span className="jp-mlops-run-name">{monitor.name}</span>
                <span className="jp-mlops-run-sub">
                  {monitor.endpoint}
                  {monitor.deployment ? `/${monitor.deployment}` : ''} · {formatSchedule(monitor.schedule_s)} · checked
                  until {formatTime(monitor.window_end)}
                </span>
                <span className={`jp-mlops-drift-text jp-mlops-drift-text-${result.kind}`}>{result.text}</span>
                {alerts.map(alert => (
                  <span className="jp-mlops-run-sub" key={alert} title={alert}>
                    ⚠ {alert}
                  </span>
                ))}
              </span>
              <span className="jp-mlops-run-side">
                <button
                  className="jp-mlops-button"
                  disabled={!monitor.last_run_id}
                  title={
                    monitor.last_run_id ? 'Open the last evidently report in a tab' : 'The monitor has not run yet'
                  }
                  onClick={() => props.openReport(monitor.name)}
                >
                  Report
                </button>
                {props.dashboard && (
                  <button
                    className="jp-mlops-button"
                    title="Every signal over time with its threshold and alerts, in a tab"
                    onClick={() => props.dashboard?.(monitor.name)}
                  >
                    Dashboard
                  </button>
                )}
              </span>
            </div>
          );
        })}
        {!model.loading && !model.monitors.length && !model.error && (
          <div className="jp-mlops-empty">
            No monitors yet: mlops.monitors.create("name", "endpoint", reference=training_frame).
          </div>
        )}
      </div>
    </div>
  );
}
