/**
 * The Endpoint and Monitor dashboards in a main-area tab: the Vega-Lite v5 chart the core makes (`chart` of
 * `GET endpoints/{name}/history` or `GET monitors/{name}/history`), drawn by JupyterLab's own Vega renderer, the
 * one that draws the same chart in a notebook (`mlops.ui.endpoint_dashboard`, `mlops.ui.monitor`).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { IRenderMimeRegistry, MimeModel } from '@jupyterlab/rendermime';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { mlopsIcon } from './icon';
import { Mlops } from './tokens';

export const VEGALITE = 'application/vnd.vegalite.v5+json';

export type DashboardKind = 'endpoint' | 'monitor';

type History = Mlops.EndpointHistory | Mlops.MonitorHistory;

function history(kind: DashboardKind, name: string, settings?: api.Settings): Promise<History> {
  const folder = kind === 'endpoint' ? 'endpoints' : 'monitors';
  return api.requestAPI<History>(`${folder}/${encodeURIComponent(name)}/history`, {}, settings);
}

function message(text: string, className: string): HTMLElement {
  const node = document.createElement('div');
  node.className = className;
  node.textContent = text;
  return node;
}

/** How many points the chart holds, said beside it (and what a reader of a test checks it against). */
function summary(kind: DashboardKind, data: History): string {
  if ('points' in data) {
    const intervals = new Set(data.points.map(p => p.time)).size;
    return intervals
      ? `${intervals} interval(s) of live figures, ${data.points.length} point(s): one per deployment and interval`
      : 'No live figures yet: one is written per interval while the endpoint serves.';
  }
  const runs = new Set(data.figures.map(f => f.run_id)).size;
  return runs ? `${runs} run(s), ${data.figures.length} figure(s)` : 'No run yet: the chart fills as the monitor runs.';
}

export class DashboardView extends Widget {
  constructor(
    readonly kind: DashboardKind,
    readonly name: string,
    private readonly rendermime: IRenderMimeRegistry,
    private readonly settings?: api.Settings,
    private readonly openRun?: (runId: string) => void
  ) {
    super();
    this.addClass('jp-mlops-dashboard');
  }

  /** A click on a point of a monitor's chart opens that run's report. Vega's SVG renderer binds each mark's
   * scenegraph item to its element (`__data__`, what Vega's own event handler reads), the item holds its row. */
  private onClick = (event: MouseEvent): void => {
    const item = (event.target as { __data__?: { datum?: { run_id?: unknown } } } | null)?.__data__;
    const run = item?.datum?.run_id;
    if (typeof run === 'string' && run && this.openRun) {
      this.openRun(run);
    }
  };

  /** Fetch the history and draw its chart; an error says what is wrong (an unknown name, the server down). */
  async load(): Promise<void> {
    this.node.replaceChildren(message('Loading…', 'jp-mlops-empty'));
    try {
      const data = await history(this.kind, this.name, this.settings);
      const caption = message(summary(this.kind, data), 'jp-mlops-dashboard-summary');
      const renderer = this.rendermime.createRenderer(VEGALITE);
      renderer.addClass('jp-mlops-dashboard-chart');
      this.node.replaceChildren(caption, renderer.node);
      if (this.kind === 'monitor') {
        renderer.node.addEventListener('click', this.onClick);
      }
      await renderer.renderModel(new MimeModel({ data: { [VEGALITE]: data.chart as never } }));
    } catch (error) {
      const failed = message(api.errorMessage(error), 'jp-mlops-error');
      failed.setAttribute('role', 'alert');
      this.node.replaceChildren(failed);
    }
  }
}

/** Open (or bring forward and reload) the dashboard of endpoint or monitor `name`. */
export function openDashboard(
  app: JupyterFrontEnd,
  rendermime: IRenderMimeRegistry,
  kind: DashboardKind,
  name: string,
  settings?: api.Settings,
  openRun?: (runId: string) => void
): void {
  const id = `jp-mlops-dashboard-${kind}-${name}`.replace(/[^\w-]/g, '_');
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id && widget instanceof MainAreaWidget && widget.content instanceof DashboardView) {
      app.shell.activateById(id);
      void widget.content.load();
      return;
    }
  }
  const content = new DashboardView(kind, name, rendermime, settings, openRun);
  const widget = new MainAreaWidget({ content, reveal: content.load() });
  widget.id = id;
  widget.title.label = `${kind === 'endpoint' ? 'Endpoint' : 'Monitor'} ${name}`;
  widget.title.caption = `The ${kind} dashboard of ${name}`;
  widget.title.icon = mlopsIcon;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
}
