import { describe, expect, it } from 'vitest';

import {
  EventsModel,
  formatDuration,
  formatTime,
  groupByName,
  keyMetrics,
  ModelsModel,
  paginate,
  RunsModel
} from '../src/model';
import { fakeServer, version } from './fake';

describe('helpers', () => {
  it('paginates and clamps', () => {
    const items = Array.from({ length: 1000 }, (_, i) => i);
    expect(paginate(items, 0).items).toHaveLength(50);
    expect(paginate(items, 0).pages).toBe(20);
    expect(paginate(items, 99).page).toBe(19);
    expect(paginate([], 3)).toEqual({ items: [], page: 0, pages: 1 });
  });

  it('groups consecutive versions by model', () => {
    const groups = groupByName([version('a', 1), version('a', 2), version('b', 1)]);
    expect(groups.map(([name, v]) => [name, v.length])).toEqual([
      ['a', 2],
      ['b', 1]
    ]);
  });

  it('formats durations and metrics', () => {
    expect(formatDuration(null)).toBe('');
    expect(formatDuration(0.25)).toBe('250 ms');
    expect(formatDuration(12.34)).toBe('12.3 s');
    expect(formatDuration(125)).toBe('2 min 5 s');
    expect(formatDuration(3700)).toBe('1 h 1 min');
    expect(keyMetrics({ rmse: 0.123456, auc: 0.91, f1: 0.8, loss: 2 })).toBe('auc 0.91 · f1 0.8 · loss 2');
  });
});

describe('ModelsModel', () => {
  it('loads 1,000 versions and pages through them', async () => {
    const versions = Array.from({ length: 1000 }, (_, i) => version(`m${Math.floor(i / 100)}`, (i % 100) + 1));
    const { settings } = fakeServer({ 'GET models': [200, { versions }] });
    const model = new ModelsModel(settings);
    let changes = 0;
    model.changed.connect(() => changes++);
    await model.refresh();
    expect(changes).toBeGreaterThan(0);
    expect(model.modelCount).toBe(10);
    expect(model.current.items).toHaveLength(50);
    model.setPage(19);
    expect(model.current.items[49]).toMatchObject({ name: 'm9', version: 100 });
  });

  it('shows a refused filter inline, and clears it on the next good one', async () => {
    const { settings, calls } = fakeServer({
      'GET models': call =>
        call.url.includes('filter=%3D%3D')
          ? [400, { message: 'Cannot parse the filter', error: 'FilterSyntaxError' }]
          : [200, { versions: [version('churn', 2, { stage: 'prod' })] }]
    });
    const model = new ModelsModel(settings);
    await model.applyFilter('==');
    expect(model.filterError).toBe('Cannot parse the filter');
    expect(model.versions).toEqual([]);
    await model.applyFilter('stage=prod');
    expect(model.filterError).toBe('');
    expect(model.versions).toHaveLength(1);
    const listings = calls.filter(c => !c.url.includes('/release'));
    expect(listings.at(-1)!.url).toContain('filter=stage%3Dprod');
  });

  it('shows the in-use refusal as an error message and keeps the version', async () => {
    const { settings } = fakeServer({
      'GET models': [200, { versions: [version('churn', 1)] }],
      'DELETE models/churn/versions/1': [
        409,
        { message: 'Cannot delete churn:1: it is used by scoring/blue.', error: 'ModelInUseError' }
      ]
    });
    const model = new ModelsModel(settings);
    await model.refresh();
    expect(await model.deleteVersion('churn', 1)).toBe(false);
    expect(model.message).toEqual({ kind: 'error', text: 'Cannot delete churn:1: it is used by scoring/blue.' });
    expect(model.versions).toHaveLength(1);
  });

  it('sets an alias and refreshes', async () => {
    const { settings, calls } = fakeServer({
      'GET models': [200, { versions: [{ ...version('churn', 1), aliases: ['champion'] }] }],
      'PUT models/churn/aliases/champion': [200, version('churn', 1)]
    });
    const model = new ModelsModel(settings);
    expect(await model.setAlias('churn', ' champion ', 1)).toBe(true);
    expect(model.message?.kind).toBe('info');
    expect(model.versions[0].aliases).toEqual(['champion']);
    // the change, the listing, and the release state of the model listed (one request per model)
    expect(calls.map(c => `${c.method} ${c.url.split('?')[0]}`)).toEqual([
      'PUT /lab-base/mlops/api/models/churn/aliases/champion',
      'GET /lab-base/mlops/api/models',
      'GET /lab-base/mlops/api/models/churn/release'
    ]);
  });
});

describe('RunsModel', () => {
  it('filters by experiment and remembers the experiments seen', async () => {
    const run = (experiment: string) => ({ run_id: experiment, experiment, status: 'FINISHED', metrics: {} });
    const { settings, calls } = fakeServer({
      'GET runs': call => [200, { runs: call.url.includes('experiment=a') ? [run('a')] : [run('a'), run('b')] }]
    });
    const model = new RunsModel(settings);
    await model.refresh();
    await model.setExperiment('a');
    expect(model.runs).toHaveLength(1);
    expect(model.experiments).toEqual(['a', 'b']);
    expect(calls[1].url).toContain('experiment=a');
  });
});

describe('EventsModel', () => {
  it('parses stream messages, newest first, without duplicates', () => {
    const { settings } = fakeServer({});
    const model = new EventsModel(settings);
    const fake: { url?: string; onmessage?: (m: { data: string }) => void } = {};
    model.connect(url => {
      fake.url = url;
      return fake as unknown as EventSource;
    });
    const received: string[] = [];
    model.received.connect((_, e) => received.push(e.type));
    const event = (id: string, type: string) => ({ data: JSON.stringify({ id, type, data: {}, time: '' }) });
    fake.onmessage!(event('1', 'run.failed'));
    fake.onmessage!(event('2', 'model.registered'));
    fake.onmessage!(event('1', 'run.failed'));
    fake.onmessage!({ data: 'not json' });
    expect(fake.url).toContain('/mlops/api/events');
    expect(model.events.map(e => e.id)).toEqual(['2', '1']);
    expect(received).toEqual(['run.failed', 'model.registered']);
  });
});

describe('formatTime', () => {
  it('shows the time today and the day before', () => {
    const now = new Date(2026, 10, 26, 15, 0, 0);
    expect(formatTime(new Date(2026, 10, 26, 14, 5, 9).toISOString(), now)).toBe('14:05:09');
    expect(formatTime(new Date(2026, 10, 25, 9, 7, 0).toISOString(), now)).toMatch(/25.* 09:07$/);
    expect(formatTime(null)).toBe('');
  });
});

describe('EventsModel.loadRecent', () => {
  it('shows kept events without signalling them as new', async () => {
    const kept = { id: 'a-1', type: 'run.failed', data: {}, time: '' };
    const { settings } = fakeServer({ 'GET events/recent': [200, { events: [kept] }] });
    const model = new EventsModel(settings);
    const received: string[] = [];
    model.received.connect((_, e) => received.push(e.id));
    await model.loadRecent();
    expect(model.events.map(e => e.id)).toEqual(['a-1']);
    expect(received).toEqual([]);
  });
});

describe('RunsModel.register', () => {
  it('registers runs:/<id>/model and reports the new version, or the refusal', async () => {
    const { settings, calls } = fakeServer({
      'POST models/churn/versions': [201, version('churn', 4)],
      'POST models/bad/versions': [404, { message: "run 'abc' has no artifacts under 'model'", error: 'NotFound' }]
    });
    const model = new RunsModel(settings);
    expect((await model.register('abc', ' churn '))?.version).toBe(4);
    expect(JSON.parse(calls[0].body!)).toEqual({ source: 'runs:/abc/model' });
    expect(model.message).toEqual({ kind: 'info', text: 'Registered churn:4 from runs:/abc/model.' });
    expect(await model.register('abc', 'bad')).toBeNull();
    expect(model.message?.kind).toBe('error');
  });
});
