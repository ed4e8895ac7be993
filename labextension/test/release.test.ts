import { describe, expect, it } from 'vitest';

import { baselineOf, ModelsModel } from '../src/model';
import { Mlops } from '../src/tokens';
import { fakeServer, version } from './fake';

function state(name: string, n: number, verdict: 'passed' | 'failed' | 'none', status: string | null) {
  const release: Mlops.ReleaseState = {
    model: name,
    version: n,
    aliases: [],
    gate: { verdict, run_id: verdict === 'none' ? null : 'abc', baseline: null, evaluated_at: null },
    approval: {
      model: name,
      version: n,
      status,
      requested_by: status ? 'ana' : null,
      requested_at: null,
      reason: null,
      decided_by: null,
      decided_at: null,
      comment: null
    }
  };
  return release;
}

describe('release gates in the Models panel', () => {
  it('reads every version’s release state once per model', async () => {
    const { settings, calls } = fakeServer({
      'GET models': [200, { versions: [version('churn', 1), version('churn', 2), version('fraud', 1)] }],
      'GET models/churn/release': [
        200,
        { versions: [state('churn', 1, 'passed', 'Approved'), state('churn', 2, 'failed', null)] }
      ],
      'GET models/fraud/release': [500, { message: 'broken' }]
    });
    const model = new ModelsModel(settings);
    await model.refresh();
    expect(model.releaseOf(version('churn', 1))?.approval.status).toBe('Approved');
    expect(model.releaseOf(version('churn', 2))?.gate.verdict).toBe('failed');
    expect(model.releaseOf(version('fraud', 1))).toBeUndefined(); // a model whose state fails still lists
    expect(model.versions).toHaveLength(3);
    expect(calls.filter(c => c.url.includes('/release'))).toHaveLength(2);
  });

  it('approves with the comment and refreshes', async () => {
    const { settings, calls } = fakeServer({
      'GET models': [200, { versions: [version('churn', 2)] }],
      'GET models/churn/release': [200, { versions: [state('churn', 2, 'passed', 'Approved')] }],
      'POST models/churn/versions/2/approve': [200, state('churn', 2, 'passed', 'Approved')]
    });
    const model = new ModelsModel(settings);
    expect(await model.decide('churn', 2, 'approve', 'looked at the confusion matrix')).toBe(true);
    const post = calls.find(c => c.method === 'POST')!;
    expect(JSON.parse(post.body!)).toEqual({ comment: 'looked at the confusion matrix' });
    expect(model.message).toEqual({ kind: 'info', text: 'Approved churn:2.' });
    expect(model.releaseOf(version('churn', 2))?.approval.status).toBe('Approved');
  });

  it('requests an approval with the reason', async () => {
    const { settings, calls } = fakeServer({
      'GET models': [200, { versions: [] }],
      'POST models/churn/versions/3/approval': [200, state('churn', 3, 'none', 'PendingApproval')]
    });
    const model = new ModelsModel(settings);
    expect(await model.decide('churn', 3, 'approval', '')).toBe(true);
    expect(JSON.parse(calls[0].body!)).toEqual({ reason: null });
  });

  it('shows a refused promotion with what the policy misses', async () => {
    const refusal = 'Cannot promote churn:2 to champion: it is not approved (nobody asked for its approval).';
    const { settings } = fakeServer({
      'POST models/churn/versions/2/promote': [409, { message: refusal, error: 'PromotionRefused' }]
    });
    const model = new ModelsModel(settings);
    expect(await model.promote('churn', 2, 'champion', 'May retrain')).toBe(false);
    expect(model.message).toEqual({ kind: 'error', text: refusal });
  });

  it('says where the alias moved after a promotion', async () => {
    const promotion: Mlops.Promotion = {
      model: 'churn',
      alias: 'champion',
      version: 2,
      previous_version: 1,
      moved: true,
      promoted_by: 'ana',
      reason: null,
      requires: ['gate', 'approval'],
      gate_run_id: 'abc',
      approved_by: 'bo'
    };
    const { settings, calls } = fakeServer({
      'GET models': [200, { versions: [] }],
      'POST models/churn/versions/2/promote': [200, promotion]
    });
    const model = new ModelsModel(settings);
    expect(await model.promote('churn', 2, ' champion ', '')).toBe(true);
    expect(JSON.parse(calls[0].body!)).toEqual({ alias: 'champion', reason: null });
    expect(model.message?.text).toBe('churn@champion now points at version 2 (was version 1).');
  });

  it('compares a candidate with the champion, else with the version before it', () => {
    const champion = { ...version('churn', 2), aliases: ['champion'] };
    const versions = [version('churn', 1), champion, version('churn', 3), version('fraud', 7)];
    expect(baselineOf(versions[2], versions)).toBe(2);
    expect(baselineOf(champion, versions)).toBe(1);
    expect(baselineOf(versions[0], versions)).toBe(2); // an older version is compared with the champion too
    expect(baselineOf(versions[3], versions)).toBeNull(); // the only version of fraud, no champion
  });
});
