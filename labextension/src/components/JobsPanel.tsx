import { InputDialog } from '@jupyterlab/apputils';
import React from 'react';

import { formatDuration, formatTime, keyMetrics, RunsModel } from '../model';
import { Mlops } from '../tokens';
import { ErrorNote, RefreshButton, StatusNote } from './common';
import { useModel } from './hooks';

export function JobsPanel(props: { model: RunsModel; openCode: (run: Mlops.Run) => void }): JSX.Element {
  const model = useModel(props.model);
  return (
    <div className="jp-mlops-panel jp-mlops-jobs">
      <div className="jp-mlops-toolbar">
        <select
          className="jp-mlops-input jp-mlops-select"
          aria-label="Experiment"
          value={model.experiment}
          onChange={e => void model.setExperiment(e.target.value)}
        >
          <option value="">All experiments</option>
          {model.experiments.map(name => (
            <option key={name} value={name}>
              {name}
            </option>
          ))}
        </select>
        <RefreshButton onClick={() => void model.refresh()} />
      </div>
      <ErrorNote error={model.error} />
      <StatusNote message={model.message} onDismiss={() => model.dismissMessage()} />
      <div className="jp-mlops-list">
        {model.runs.map(run => (
          <div className="jp-mlops-row jp-mlops-run" key={run.run_id} data-status={run.status}>
            <span
              className={`jp-mlops-status jp-mlops-status-${run.status.toLowerCase()}`}
              title={run.status}
              aria-label={run.status}
            />
            <span className="jp-mlops-run-main">
              <span className="jp-mlops-run-name" title={`${run.run_id} · ${run.user ?? ''}`}>
                {run.name ?? run.run_id.slice(0, 8)}
              </span>
              <span className="jp-mlops-run-sub">
                {run.experiment}
                {run.start_time ? ` · ${formatTime(run.start_time)}` : ''}
              </span>
              {Object.keys(run.metrics).length > 0 && (
                <span className="jp-mlops-run-metrics">{keyMetrics(run.metrics)}</span>
              )}
            </span>
            <span className="jp-mlops-run-side">
              <span className="jp-mlops-run-duration">
                {run.status === 'RUNNING' ? 'running' : formatDuration(run.duration_s)}
              </span>
              <button
                className="jp-mlops-link"
                title="Open the notebook this run executed (or the cell it ran)"
                onClick={() => props.openCode(run)}
              >
                code
              </button>
              {run.status === 'FINISHED' && (
                <button
                  className="jp-mlops-link"
                  title="Register the model this run logged as a new model version"
                  onClick={() => void register(model, run)}
                >
                  register
                </button>
              )}
            </span>
          </div>
        ))}
        {!model.loading && !model.runs.length && !model.error && (
          <div className="jp-mlops-empty">No runs yet: run a cell with %%mlops_job.</div>
        )}
      </div>
    </div>
  );
}

async function register(model: RunsModel, run: Mlops.Run): Promise<void> {
  const answer = await InputDialog.getText({
    title: `Register the model of run ${run.name ?? run.run_id.slice(0, 8)}`,
    label: 'Model name (the files of the artifact path "model" become its next version)',
    placeholder: run.experiment
  });
  if (answer.button.accept && answer.value && answer.value.trim()) {
    await model.register(run.run_id, answer.value);
  }
}
