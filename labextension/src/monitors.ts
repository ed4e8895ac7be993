/** The state of the Monitors panel: each drift monitor with the result of its last run. */
import * as api from './api';
import { Model } from './model';
import { Mlops } from './tokens';

export class MonitorsModel extends Model {
  monitors: Mlops.Monitor[] = [];
  error = '';
  loading = false;
  /** The monitor to highlight (set by a drift notification). */
  selected = '';

  async refresh(): Promise<void> {
    this.loading = true;
    this.emit();
    try {
      this.monitors = (await api.listMonitors(this.settings)).monitors;
      this.error = '';
    } catch (error) {
      this.error = api.errorMessage(error);
    } finally {
      this.loading = false;
      this.emit();
    }
  }

  select(monitor: string): void {
    this.selected = monitor;
    this.emit();
  }
}

/** One line for a monitor's last result: `drift: 50% of features (≥ 30%)`, `no drift`, `not run yet`. */
export function describeResult(monitor: Mlops.Monitor): { kind: 'drift' | 'ok' | 'none'; text: string } {
  const result = monitor.last_result;
  if (!result) {
    return { kind: 'none', text: 'not run yet' };
  }
  if (result.drift_share === null || result.drift_share === undefined) {
    return { kind: 'none', text: `too few rows to compare (${result.rows ?? 0})` };
  }
  const share = `${Math.round(result.drift_share * 100)}% of features drifted`;
  const alerts = result.alerts ?? [];
  if (alerts.length || result.drifted) {
    return { kind: 'drift', text: `drift: ${share}` };
  }
  return { kind: 'ok', text: `no drift: ${share}` };
}

/** `every 15 min`, `every 1 h`, `every 30 s`. */
export function formatSchedule(seconds: number): string {
  if (seconds % 86400 === 0) {
    return `every ${seconds / 86400} d`;
  }
  if (seconds % 3600 === 0) {
    return `every ${seconds / 3600} h`;
  }
  if (seconds % 60 === 0) {
    return `every ${seconds / 60} min`;
  }
  return `every ${seconds} s`;
}
