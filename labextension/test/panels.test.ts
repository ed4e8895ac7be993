import { describe, expect, it } from 'vitest';

import * as api from '../src/api';
import { suggestDeploymentName } from '../src/endpoints';
import { describeResult, formatSchedule, MonitorsModel } from '../src/monitors';
import { noticeFor, sectionOf } from '../src/notifications';
import { orderedSteps, PipelinesModel } from '../src/pipelines';
import { Mlops } from '../src/tokens';
import { fakeServer } from './fake';

function event(type: string, data: Record<string, unknown>, subject: string | null = null): Mlops.CloudEvent {
  return {
    specversion: '1.0',
    id: '1',
    source: 's',
    type,
    time: '',
    subject,
    datacontenttype: 'application/json',
    data
  };
}

function monitor(last_result: Mlops.DriftResult | null): Mlops.Monitor {
  return {
    name: 'churn-drift',
    endpoint: 'churn-api',
    deployment: null,
    features: ['f0'],
    schedule_s: 900,
    thresholds: { drift_share: 0.3 },
    window_end: '2026-11-26T12:00:00+00:00',
    last_run_id: last_result ? 'abc' : null,
    last_result,
    created_at: null
  };
}

describe('notifications', () => {
  it('drift.detected opens the monitor report', () => {
    const notice = noticeFor(
      event('drift.detected', { dataDriftName: 'churn-drift', driftCoefficient: 0.5, drifted_features: ['f0', 'f2'] })
    );
    expect(notice).toEqual({
      level: 'warning',
      message: 'Drift detected by monitor churn-drift: 50% of the features drifted (f0, f2).',
      action: { label: 'Open report', target: { kind: 'report', monitor: 'churn-drift' } }
    });
    expect(noticeFor(event('drift.detected', {}, 'monitors/m1'))?.action.target).toEqual({
      kind: 'report',
      monitor: 'm1'
    });
  });

  it('deployment.failed shows the endpoint; run.failed the jobs; others nothing', () => {
    const notice = noticeFor(
      event('deployment.failed', { endpointName: 'api', deploymentName: 'red', model: 'clf:2', error: 'bad pickle' })
    );
    expect(notice?.level).toBe('error');
    expect(notice?.message).toBe('Deployment api/red of clf:2 failed: bad pickle');
    expect(notice?.action.target).toEqual({ kind: 'endpoint', endpoint: 'api' });
    expect(noticeFor(event('run.failed', { name: 'train', experiment: 'x' }))?.action.target).toEqual({ kind: 'jobs' });
    expect(noticeFor(event('model.registered', {}))).toBeNull();
  });

  it('routes each event type to the section it changes', () => {
    expect(sectionOf('deployment.traffic_changed')).toBe('endpoints');
    expect(sectionOf('endpoint.created')).toBe('endpoints');
    expect(sectionOf('drift.detected')).toBe('monitors');
    expect(sectionOf('pipeline.failed')).toBe('pipelines');
    expect(sectionOf('run.completed')).toBe('runs');
    expect(sectionOf('something.else')).toBeNull();
  });
});

describe('monitors', () => {
  it('describes the last result', () => {
    expect(describeResult(monitor(null))).toEqual({ kind: 'none', text: 'not run yet' });
    expect(describeResult(monitor({ rows: 1, drift_share: null }))).toEqual({
      kind: 'none',
      text: 'too few rows to compare (1)'
    });
    expect(describeResult(monitor({ drifted: true, drift_share: 0.5, alerts: ['x'] }))).toEqual({
      kind: 'drift',
      text: 'drift: 50% of features drifted'
    });
    expect(describeResult(monitor({ drifted: false, drift_share: 0, alerts: [] })).kind).toBe('ok');
    expect([formatSchedule(900), formatSchedule(3600), formatSchedule(45), formatSchedule(86400)]).toEqual([
      'every 15 min',
      'every 1 h',
      'every 45 s',
      'every 1 d'
    ]);
  });

  it('loads and selects', async () => {
    const { settings } = fakeServer({ 'GET monitors': [200, { monitors: [monitor(null)] }] });
    const model = new MonitorsModel(settings);
    await model.refresh();
    model.select('churn-drift');
    expect(model.monitors).toHaveLength(1);
    expect(model.selected).toBe('churn-drift');
  });
});

describe('pipelines', () => {
  it('loads each pipeline with its latest runs, steps in declared order', async () => {
    const pipeline = {
      name: 'nightly',
      version: 'v',
      spec_path: '/p.yaml',
      runs: 1,
      last_status: 'FAILED',
      last_run_id: 'r1',
      last_run_at: null,
      steps: ['prepare', 'train']
    };
    const run = {
      run_id: 'r1',
      pipeline: 'nightly',
      version: 'v',
      status: 'FAILED',
      start_time: null,
      duration_s: 3,
      steps: { train: 'failed', prepare: 'succeeded', old: 'skipped' },
      resumed_from: null
    };
    const { settings, calls } = fakeServer({
      'GET pipelines': [200, { pipelines: [pipeline] }],
      'GET pipelines/nightly/runs': [200, { runs: [run] }]
    });
    const model = new PipelinesModel(settings);
    await model.refresh();
    expect(model.runs.nightly).toHaveLength(1);
    expect(calls[1].url).toContain('max_results=5');
    expect(orderedSteps(model.runs.nightly[0], pipeline)).toEqual([
      ['prepare', 'succeeded'],
      ['train', 'failed'],
      ['old', 'skipped']
    ]);
  });
});

describe('small helpers', () => {
  it('suggests a deployment name the server accepts', () => {
    expect(suggestDeploymentName('Churn_Model', 3)).toBe('churn-model-v3');
    expect(suggestDeploymentName('__', 1)).toBe('model-v1');
  });

  it('reads the report as text and a missing one as an error with its message', async () => {
    const { settings } = fakeServer({
      'GET monitors/m%201/report': [200, '<html>report</html>'],
      'GET monitors/m2/report': [404, { message: "Monitor 'm2' has not run yet", error: 'NotFound' }]
    });
    // (the fake server JSON-encodes every body: the text comes back as it was sent)
    expect(await api.monitorReport('m 1', settings)).toBe('"<html>report</html>"');
    const error = await api.monitorReport('m2', settings).catch(e => e);
    expect(error).toBeInstanceOf(api.MlopsApiError);
    expect(error.message).toBe("Monitor 'm2' has not run yet");
  });
});
