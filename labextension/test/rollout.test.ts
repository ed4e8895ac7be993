import { describe, expect, it } from 'vitest';

import { Rollout } from '../src/api';
import { describeAutomationRan } from '../src/components/EventsPanel';
import { formatGuard, guardFigures, rolloutProgress, rolloutShown } from '../src/endpoints';

function rollout(changes: Partial<Rollout> = {}): Rollout {
  return {
    id: 1,
    endpoint: 'api',
    deployment: 'green',
    model: null,
    state: 'running',
    step: 2,
    steps: [10, 50, 100],
    percent: 50,
    bake_s: 60,
    guards: { error_rate: 0.01, p99_ms: 50, min_requests: 100 },
    figures: { green: { requests: 240, errors: 1, error_rate: 1 / 240, p99_ms: 12.5 } },
    reason: null,
    promote: null,
    created_by: 'tester',
    created_at: '2026-12-02T10:00:00+00:00',
    updated_at: '2026-12-02T10:01:00+00:00',
    ended_at: null,
    ...changes
  };
}

describe('rollouts', () => {
  it('counts the steps done and the live share', () => {
    expect(rolloutProgress(rollout())).toEqual({ done: 1, total: 3, percent: 50 });
    expect(rolloutProgress(rollout({ state: 'completed', step: 3, percent: 100 }))).toEqual({
      done: 3,
      total: 3,
      percent: 100
    });
    expect(rolloutProgress(rollout({ state: 'aborted' })).percent).toBe(0);
  });

  it('sets each guard against its figure', () => {
    expect(guardFigures(rollout())).toEqual([
      { guard: 'error_rate', figure: 1 / 240, threshold: 0.01, ok: true },
      { guard: 'p99_ms', figure: 12.5, threshold: 50, ok: true },
      { guard: 'min_requests', figure: 240, threshold: 100, ok: true }
    ]);
    expect(guardFigures(rollout({ figures: null }))[0]).toEqual({
      guard: 'error_rate',
      figure: null,
      threshold: 0.01,
      ok: null
    });
    expect([formatGuard('error_rate', 0.05), formatGuard('min_requests', 5), formatGuard('p99_ms', null)]).toEqual([
      '5.0%',
      '5 req',
      '–'
    ]);
  });

  it('shows active and recently ended rollouts only', () => {
    const now = Date.parse('2026-12-02T12:00:00+00:00');
    expect(rolloutShown(rollout(), now)).toBe(true);
    expect(rolloutShown(rollout({ state: 'aborted', ended_at: '2026-12-02T11:50:00+00:00' }), now)).toBe(true);
    expect(rolloutShown(rollout({ state: 'completed', ended_at: '2026-12-02T10:00:00+00:00' }), now)).toBe(false);
  });
});

describe('automation.ran', () => {
  it('says the automation, the action, the status and what it started', () => {
    const data = {
      automation: 'roll-new',
      status: 'succeeded',
      reason: null,
      result: { rollout_id: 3, endpoint: 'churn-api', state: 'running' }
    };
    expect(describeAutomationRan(data)).toEqual({
      automation: 'roll-new',
      action: 'rollout',
      status: 'succeeded',
      started: 'rollout #3 of churn-api (running)'
    });
    const failed = describeAutomationRan({
      automation: 'x',
      status: 'failed',
      reason: 'no such pipeline',
      result: null
    });
    expect([failed.action, failed.started]).toEqual(['', 'no such pipeline']);
  });
});
