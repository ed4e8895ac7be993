import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ServerConnection } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import { openCompare } from './compare';
import { promptDeploy } from './components/DeployForm';
import { openDashboard } from './dashboard';
import { EndpointsModel } from './endpoints';
import { EventsModel, ModelsModel, RunsModel } from './model';
import { MonitorsModel } from './monitors';
import { noticeFor, sectionOf, Target } from './notifications';
import { PipelinesModel } from './pipelines';
import { openReport } from './report';
import { openRunCode } from './runCode';
import { IModels, MlopsSidebar } from './sidebar';
import { Mlops, PLUGIN_ID } from './tokens';

const REFRESH_COMMAND = 'jupyter-mlops:refresh';

/** Show the notice of `event`, if it has one; its button calls `open` with its target. */
function notify(event: Mlops.CloudEvent, open: (target: Target) => void): void {
  const notice = noticeFor(event);
  if (!notice) {
    return;
  }
  const options = {
    autoClose: false as const,
    actions: [{ label: notice.action.label, callback: () => open(notice.action.target) }]
  };
  if (notice.level === 'error') {
    Notification.error(notice.message, options);
  } else {
    Notification.warning(notice.message, options);
  }
}

/** The MLOps sidebar and notifications. Nothing is awaited in `activate`. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description:
    'MLOps sidebar: tracked jobs, the model registry, endpoints, pipelines, drift monitors and a live feed of ' +
    'lifecycle events.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette, IRenderMimeRegistry],
  activate: (
    app: JupyterFrontEnd,
    restorer: ILayoutRestorer | null,
    palette: ICommandPalette | null,
    rendermime: IRenderMimeRegistry | null
  ) => {
    const settings = ServerConnection.makeSettings();
    const models: IModels = {
      runs: new RunsModel(settings),
      models: new ModelsModel(settings),
      endpoints: new EndpointsModel(settings),
      pipelines: new PipelinesModel(settings),
      monitors: new MonitorsModel(settings),
      events: new EventsModel(settings)
    };
    const show = (section: Widget) => {
      app.shell.activateById(sidebar.id);
      sidebar.reveal(section);
    };
    const sidebar: MlopsSidebar = new MlopsSidebar(models, {
      openCode: run => void openRunCode(app, run, settings),
      openReport: monitor => openReport(app, monitor, settings),
      deploy: version => void promptDeploy(models.endpoints, version, () => show(sidebar.endpointsSection)),
      compare: (name, a, b) => openCompare(app, name, a, b, settings),
      dashboard: rendermime
        ? (kind, name) =>
            openDashboard(app, rendermime, kind, name, settings, run => openReport(app, name, settings, run))
        : undefined
    });
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);

    const refresh = () =>
      Promise.all([
        models.runs.refresh(),
        models.models.refresh(),
        models.endpoints.refresh(),
        models.pipelines.refresh(),
        models.monitors.refresh()
      ]);
    app.commands.addCommand(REFRESH_COMMAND, { label: 'MLOps: Refresh All Panels', execute: refresh });
    palette?.addItem({ command: REFRESH_COMMAND, category: 'MLOps' });

    const open = (target: Target) => {
      switch (target.kind) {
        case 'jobs':
          show(sidebar.jobs);
          break;
        case 'report':
          models.monitors.select(target.monitor);
          show(sidebar.monitorsSection);
          openReport(app, target.monitor, settings);
          break;
        case 'endpoint':
          models.endpoints.select(target.endpoint);
          show(sidebar.endpointsSection);
          break;
      }
    };
    models.events.received.connect((_, event) => {
      const section = sectionOf(event.type);
      if (section) {
        void models[section].refresh();
      }
      notify(event, open);
    });

    // Started once JupyterLab has restored its layout, not awaited: its start-up never waits for the MLOps server,
    // and the panels' first requests do not compete with its own.
    void app.restored.then(() => {
      void refresh();
      void models.events.loadRecent();
      models.events.connect();
    });
  }
};

export default plugin;
