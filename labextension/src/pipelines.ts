/** The state of the Pipelines panel: each pipeline that ran, with its latest runs and their step states. */
import * as api from './api';
import { Model } from './model';
import { Mlops } from './tokens';

export const RUNS_PER_PIPELINE = 5;

export class PipelinesModel extends Model {
  pipelines: Mlops.Pipeline[] = [];
  runs: Record<string, Mlops.PipelineRun[]> = {};
  error = '';
  loading = false;

  async refresh(): Promise<void> {
    this.loading = true;
    this.emit();
    try {
      const { pipelines } = await api.listPipelines(this.settings);
      const runs = await Promise.all(
        pipelines.map(p => api.listPipelineRuns(p.name, { maxResults: RUNS_PER_PIPELINE }, this.settings))
      );
      this.pipelines = pipelines;
      this.runs = Object.fromEntries(pipelines.map((p, i) => [p.name, runs[i].runs]));
      this.error = '';
    } catch (error) {
      this.error = api.errorMessage(error);
    } finally {
      this.loading = false;
      this.emit();
    }
  }
}

/** Steps in a run, in the order the pipeline declares them (the run's own order for steps it no longer has). */
export function orderedSteps(run: Mlops.PipelineRun, pipeline?: Mlops.Pipeline): [string, string][] {
  const declared = pipeline?.steps ?? [];
  const names = [...declared.filter(s => s in run.steps), ...Object.keys(run.steps).filter(s => !declared.includes(s))];
  return names.map(name => [name, run.steps[name]]);
}
