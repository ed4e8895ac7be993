/**
 * Which events become JupyterLab notifications, what they say and what their button opens (the others only go to
 * the Events feed), and which section each event refreshes.
 */
import { Mlops } from './tokens';

export type Target = { kind: 'jobs' } | { kind: 'report'; monitor: string } | { kind: 'endpoint'; endpoint: string };

export interface INotice {
  level: 'error' | 'warning';
  message: string;
  action: { label: string; target: Target };
}

function text(value: unknown, fallback = '?'): string {
  return typeof value === 'string' && value ? value : fallback;
}

export function noticeFor(event: Mlops.CloudEvent): INotice | null {
  const data = event.data;
  switch (event.type) {
    case 'run.failed':
      return {
        level: 'error',
        message: `Run ${text(data.name, text(data.run_id))} failed (experiment ${text(data.experiment)}).`,
        action: { label: 'Show jobs', target: { kind: 'jobs' } }
      };
    case 'drift.detected': {
      const monitor = text(data.dataDriftName, event.subject?.replace(/^monitors\//, '') ?? '?');
      const share = typeof data.driftCoefficient === 'number' ? ` ${Math.round(data.driftCoefficient * 100)}%` : '';
      const drifted = Array.isArray(data.drifted_features) ? data.drifted_features.join(', ') : '';
      return {
        level: 'warning',
        message:
          `Drift detected by monitor ${monitor}:${share} of the features drifted` + (drifted ? ` (${drifted}).` : '.'),
        action: { label: 'Open report', target: { kind: 'report', monitor } }
      };
    }
    case 'deployment.failed': {
      const endpoint = text(data.endpointName);
      return {
        level: 'error',
        message: `Deployment ${endpoint}/${text(data.deploymentName)} of ${text(data.model)} failed: ${text(
          data.error,
          'see the endpoint logs'
        )}`,
        action: { label: 'Show endpoint', target: { kind: 'endpoint', endpoint } }
      };
    }
    default:
      return null;
  }
}

/** The section an event's type refreshes. */
export function sectionOf(type: string): 'runs' | 'models' | 'endpoints' | 'pipelines' | 'monitors' | null {
  const prefix = type.split('.')[0];
  switch (prefix) {
    case 'run':
      return 'runs';
    case 'model':
      return 'models';
    case 'endpoint':
    case 'deployment':
    case 'rollout':
      return 'endpoints';
    case 'pipeline':
      return 'pipelines';
    case 'drift':
    case 'monitor':
      return 'monitors';
    default:
      return null;
  }
}
