/**
 * The evidently report of a monitor in a main-area tab: the page the server keeps, in an iframe sandboxed to run
 * its scripts (the charts) and nothing else (no access to JupyterLab's origin, cookies or token).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { mlopsIcon } from './icon';

export class ReportView extends Widget {
  constructor(
    readonly monitor: string,
    private readonly settings?: api.Settings,
    readonly run?: string
  ) {
    super();
    this.addClass('jp-mlops-report');
    this.frame = document.createElement('iframe');
    this.frame.setAttribute('sandbox', 'allow-scripts');
    this.frame.title = `Drift report of monitor ${monitor}` + (run ? `, run ${run}` : '');
    this.message = document.createElement('div');
    this.message.className = 'jp-mlops-error';
    this.message.setAttribute('role', 'alert');
    this.message.hidden = true;
    this.node.append(this.message, this.frame);
  }

  readonly frame: HTMLIFrameElement;
  readonly message: HTMLDivElement;

  /** Fetch the last report and show it; a monitor without one says why (and how to get one). */
  async load(): Promise<void> {
    try {
      this.frame.srcdoc = await api.monitorReport(this.monitor, this.settings, this.run);
      this.message.hidden = true;
      this.frame.hidden = false;
    } catch (error) {
      this.message.textContent = api.errorMessage(error);
      this.message.hidden = false;
      this.frame.hidden = true;
    }
  }
}

/** Open (or bring forward and reload) the report tab of `monitor`'s last run, or of its run `run`. */
export function openReport(app: JupyterFrontEnd, monitor: string, settings?: api.Settings, run?: string): void {
  const id = `jp-mlops-report-${monitor}${run ? `-${run}` : ''}`.replace(/[^\w-]/g, '_');
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id && widget instanceof MainAreaWidget && widget.content instanceof ReportView) {
      app.shell.activateById(id);
      void widget.content.load();
      return;
    }
  }
  const content = new ReportView(monitor, settings, run);
  const widget = new MainAreaWidget({ content, reveal: content.load() });
  widget.id = id;
  widget.title.label = `Drift: ${monitor}` + (run ? ` (run ${run.slice(0, 8)})` : '');
  widget.title.caption = run
    ? `The drift report of run ${run} of monitor ${monitor}`
    : `The last drift report of monitor ${monitor}`;
  widget.title.icon = mlopsIcon;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
}
