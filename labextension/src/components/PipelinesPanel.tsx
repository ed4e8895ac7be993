import React from 'react';

import { formatDuration, formatTime } from '../model';
import { orderedSteps, PipelinesModel } from '../pipelines';
import { ErrorNote, RefreshButton } from './common';
import { useModel } from './hooks';

export function PipelinesPanel(props: { model: PipelinesModel }): JSX.Element {
  const model = useModel(props.model);
  return (
    <div className="jp-mlops-panel jp-mlops-pipelines">
      <div className="jp-mlops-toolbar">
        <span className="jp-mlops-grow jp-mlops-muted">
          {model.pipelines.length} pipeline{model.pipelines.length === 1 ? '' : 's'}
        </span>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorNote error={model.error} />
      <div className="jp-mlops-list">
        {model.pipelines.map(pipeline => (
          <div className="jp-mlops-group" key={pipeline.name} data-pipeline={pipeline.name}>
            <div className="jp-mlops-group-name" title={pipeline.spec_path}>
              {pipeline.name}
              <span className="jp-mlops-muted jp-mlops-count">
                {' '}
                · {pipeline.runs} run{pipeline.runs === 1 ? '' : 's'}
              </span>
            </div>
            {(model.runs[pipeline.name] ?? []).map(run => (
              <div className="jp-mlops-row jp-mlops-pipeline-run" key={run.run_id} data-status={run.status}>
                <span
                  className={`jp-mlops-status jp-mlops-status-${run.status.toLowerCase()}`}
                  title={run.status}
                  aria-label={run.status}
                />
                <span className="jp-mlops-run-main">
                  <span className="jp-mlops-run-sub" title={run.run_id}>
                    {formatTime(run.start_time)} · {run.status.toLowerCase()}
                    {run.duration_s !== null ? ` · ${formatDuration(run.duration_s)}` : ''}
                    {run.resumed_from ? ` · resumed` : ''}
                  </span>
                  <span className="jp-mlops-steps">
                    {orderedSteps(run, pipeline).map(([step, state]) => (
                      <span
                        key={step}
                        className={`jp-mlops-chip jp-mlops-step jp-mlops-step-${state}`}
                        title={`${step}: ${state}`}
                        data-step={step}
                        data-state={state}
                      >
                        {step}
                      </span>
                    ))}
                  </span>
                </span>
              </div>
            ))}
          </div>
        ))}
        {!model.loading && !model.pipelines.length && !model.error && (
          <div className="jp-mlops-empty">No pipeline has run yet: jupyter mlops pipeline run pipeline.yaml.</div>
        )}
      </div>
    </div>
  );
}
