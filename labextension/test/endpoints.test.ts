import { describe, expect, it } from 'vitest';

import {
  describeSplit,
  draftOf,
  EndpointsModel,
  formatLatency,
  formatRate,
  formatResources,
  mirrorProblem,
  parsePercent,
  trafficProblem
} from '../src/endpoints';
import { Mlops } from '../src/tokens';
import { fakeServer } from './fake';

function deployment(name: string, traffic = 0, mirror = 0): Mlops.Deployment {
  return {
    name,
    model: 'clf:1',
    status: 'active',
    traffic,
    mirror,
    error: null,
    created_at: null,
    requested: 'clf:1',
    live: { requests: 10, errors: 0, rate_per_s: 2.5, p50_ms: 3.21, p99_ms: 12.7 }
  };
}

function endpoint(traffic: Record<string, number>, mirror: Record<string, number> = {}): Mlops.Endpoint {
  return {
    name: 'churn-api',
    status: 'running',
    scoring_uri: 'http://127.0.0.1:5000/score',
    auth: 'key',
    traffic,
    mirror,
    deployments: [deployment('blue', traffic.blue, mirror.blue), deployment('green', traffic.green, mirror.green)],
    note: null
  };
}

describe('traffic and mirror rules', () => {
  it('reads whole percentages only', () => {
    expect(parsePercent('')).toBe(0);
    expect(parsePercent(' 30 ')).toBe(30);
    expect(parsePercent('100')).toBe(100);
    expect(parsePercent('101')).toBeNull();
    expect(parsePercent('12.5')).toBeNull();
    expect(parsePercent('-1')).toBeNull();
    expect(parsePercent('1e2')).toBeNull();
  });

  it('wants the split to add up to 100 (or nothing live at all)', () => {
    expect(trafficProblem({ blue: '70', green: '30' })).toBeNull();
    expect(trafficProblem({ blue: '0', green: '' })).toBeNull();
    expect(trafficProblem({ blue: '70', green: '20' })).toBe('Traffic must add up to 100% (now 90%).');
    expect(trafficProblem({ blue: '70', green: '40' })).toBe('Traffic must add up to 100% (now 110%).');
    expect(trafficProblem({ blue: 'x', green: '100' })).toBe(
      'Traffic of blue must be a whole number from 0 to 100, not "x".'
    );
  });

  it('mirrors one deployment at most, at most 50%, never a live one', () => {
    expect(mirrorProblem({ blue: '0', green: '20' }, { blue: '100', green: '0' })).toBeNull();
    expect(mirrorProblem({ green: '60' }, { blue: '100' })).toMatch(/from 0 to 50/);
    expect(mirrorProblem({ green: '20' }, { blue: '50', green: '50' })).toBe(
      'green gets live traffic: a deployment is either live or mirrored.'
    );
    expect(mirrorProblem({ blue: '10', green: '10' }, {})).toBe(
      'Only one deployment can be mirrored (now blue, green).'
    );
  });

  it('formats live figures', () => {
    expect(formatRate(null)).toBe('– req/s');
    expect(formatRate({ requests: 1, errors: 0, rate_per_s: null, p50_ms: 1, p99_ms: 1 })).toBe('– req/s');
    expect(formatRate({ requests: 1, errors: 0, rate_per_s: 12.34, p50_ms: 1, p99_ms: 1 })).toBe('12 req/s');
    expect(formatRate({ requests: 1, errors: 0, rate_per_s: 2.46, p50_ms: 1, p99_ms: 1 })).toBe('2.5 req/s');
    expect(formatRate({ requests: 1, errors: 0, rate_per_s: 0.05, p50_ms: 1, p99_ms: 1 })).toBe('0.05 req/s');
    expect(formatLatency(null)).toBe('–');
    expect(formatLatency(3.21)).toBe('3.2 ms');
    expect(formatLatency(123.4)).toBe('123 ms');
    expect(formatLatency(1520)).toBe('1.5 s');
    expect(describeSplit(endpoint({ blue: 90, green: 10 }))).toBe('blue 90% · green 10%');
    expect(describeSplit(endpoint({ blue: 100, green: 0 }, { green: 20 }))).toBe('blue 100% · mirror green 20%');
    expect(describeSplit(endpoint({}))).toBe('no traffic');
  });
});

describe('EndpointsModel', () => {
  it('keeps a draft, refuses a bad sum without asking the server, then PATCHes only what changed', async () => {
    const { settings, calls } = fakeServer({
      'GET endpoints': [200, { endpoints: [endpoint({ blue: 100, green: 0 })] }],
      'PATCH endpoints/churn-api': call => [200, endpoint(JSON.parse(call.body!).traffic)]
    });
    const model = new EndpointsModel(settings);
    await model.refresh();
    const [ep] = model.endpoints;
    expect(model.state(ep).draft).toEqual({ traffic: { blue: '100', green: '0' }, mirror: { blue: '0', green: '0' } });
    expect(model.edited(ep)).toBe(false);
    model.setShare(ep, 'traffic', 'green', '10');
    expect(model.problem(ep)).toBe('Traffic must add up to 100% (now 110%).');
    expect(await model.apply(ep)).toBe(false);
    expect(calls.filter(c => c.method === 'PATCH')).toHaveLength(0);
    model.setShare(ep, 'traffic', 'blue', '90');
    expect(model.problem(ep)).toBeNull();
    expect(await model.apply(ep)).toBe(true);
    const patch = calls.find(c => c.method === 'PATCH')!;
    expect(JSON.parse(patch.body!)).toEqual({ traffic: { blue: 90, green: 10 } });
    expect(model.endpoints[0].traffic).toEqual({ blue: 90, green: 10 });
    expect(model.state(model.endpoints[0]).message).toEqual({ kind: 'info', text: 'Applied: blue 90% · green 10%.' });
    expect(model.edited(model.endpoints[0])).toBe(false);
  });

  it("shows the server's refusal and keeps the draft", async () => {
    const { settings } = fakeServer({
      'GET endpoints': [200, { endpoints: [endpoint({ blue: 100, green: 0 })] }],
      'PATCH endpoints/churn-api': [400, { message: 'green receives mirrored traffic.', error: 'InvalidInput' }]
    });
    const model = new EndpointsModel(settings);
    await model.refresh();
    const [ep] = model.endpoints;
    model.setShare(ep, 'traffic', 'blue', '50');
    model.setShare(ep, 'traffic', 'green', '50');
    expect(await model.apply(ep)).toBe(false);
    expect(model.state(ep).message).toEqual({ kind: 'error', text: 'green receives mirrored traffic.' });
    expect(model.state(ep).draft.traffic).toEqual({ blue: '50', green: '50' });
  });

  it('a poll keeps an edited draft, and follows the endpoint when nobody edits', async () => {
    let current = endpoint({ blue: 100, green: 0 });
    const { settings } = fakeServer({ 'GET endpoints': () => [200, { endpoints: [current] }] });
    const model = new EndpointsModel(settings);
    await model.refresh();
    current = endpoint({ blue: 50, green: 50 });
    await model.refresh();
    expect(model.state(model.endpoints[0]).draft.traffic).toEqual({ blue: '50', green: '50' });
    model.setShare(model.endpoints[0], 'traffic', 'blue', '60');
    await model.refresh();
    expect(model.state(model.endpoints[0]).draft.traffic).toEqual({ blue: '60', green: '50' });
  });

  it('sends a test request as JSON, and says when the body is not JSON', async () => {
    const { settings, calls } = fakeServer({
      'GET endpoints': [200, { endpoints: [endpoint({ blue: 100, green: 0 })] }],
      'POST endpoints/churn-api/invoke': [200, { response: { predictions: [1] } }]
    });
    const model = new EndpointsModel(settings);
    await model.refresh();
    const [ep] = model.endpoints;
    model.setBody(ep, '{"inputs": [[1, 2]]}', 'green');
    await model.invoke(ep);
    expect(JSON.parse(calls.at(-1)!.body!)).toEqual({ data: { inputs: [[1, 2]] }, deployment: 'green' });
    expect(model.state(ep).response).toEqual({ ok: true, text: '{\n  "predictions": [\n    1\n  ]\n}' });
    model.setBody(ep, '{inputs: oops');
    await model.invoke(ep);
    expect(model.state(ep).response?.ok).toBe(false);
    expect(model.state(ep).response?.text).toMatch(/^The body is not valid JSON/);
  });

  it('deploys a model version and reports where', async () => {
    const { settings, calls } = fakeServer({
      'GET endpoints': [200, { endpoints: [endpoint({ blue: 100, green: 0 })] }],
      'POST endpoints/churn-api/deployments': [201, deployment('red')],
      'POST endpoints/nope/deployments': [404, { message: "No endpoint named 'nope'.", error: 'NotFound' }]
    });
    const model = new EndpointsModel(settings);
    expect((await model.deploy('churn-api', 'red', 'clf:1'))?.name).toBe('red');
    expect(JSON.parse(calls[0].body!)).toEqual({ name: 'red', model: 'clf:1' });
    expect(model.deployMessage?.kind).toBe('info');
    expect(model.selected).toBe('churn-api');
    expect(await model.deploy('nope', 'red', 'clf:1')).toBeNull();
    expect(model.deployMessage).toEqual({ kind: 'error', text: "Deploying clf:1 to nope: No endpoint named 'nope'." });
  });

  it('draftOf lists every deployment', () => {
    expect(draftOf(endpoint({ blue: 100 })).traffic).toEqual({ blue: '100', green: '0' });
  });
});

describe('EndpointsModel.loadLogs', () => {
  it("reads the router's log, then one deployment's, and keeps the choice", async () => {
    const { settings, calls } = fakeServer({
      'GET endpoints': [200, { endpoints: [endpoint({ blue: 100, green: 0 })] }],
      'GET endpoints/churn-api/logs': call => [
        200,
        { endpoint: 'churn-api', deployment: null, text: call.url.includes('deployment=blue') ? 'blue loaded' : '' }
      ]
    });
    const model = new EndpointsModel(settings);
    await model.refresh();
    const [ep] = model.endpoints;
    await model.loadLogs(ep);
    expect(model.state(ep).logs).toBe('(the log is empty)');
    await model.loadLogs(ep, 'blue');
    expect(model.state(ep).logs).toBe('blue loaded');
    await model.loadLogs(ep);
    expect(calls.at(-1)!.url).toContain('deployment=blue&lines=200');
  });
});

describe('deployment resources', () => {
  it('says what a deployment was given and where it infers', () => {
    const given = {
      ...deployment('blue'),
      resources: { cpu: 2, memory: '2Gi', gpu: 0 },
      provider: 'CPUExecutionProvider'
    };
    expect(formatResources(given)).toBe('2 cpu · 2Gi');
    const gpu = { ...deployment('green'), resources: { gpu: 1 }, provider: 'CUDAExecutionProvider' };
    expect(formatResources(gpu)).toBe('GPU');
    const preferred = { ...deployment('red'), resources: { cpu: 1, gpu: 'prefer' }, provider: 'CPUExecutionProvider' };
    expect(formatResources(preferred)).toBe('1 cpu · CPU (GPU preferred)');
    expect(formatResources(deployment('plain'))).toBe('');
  });
});
