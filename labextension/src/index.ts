import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette, Notification } from '@jupyterlab/apputils';
import { ServerConnection } from '@jupyterlab/services';

import { EventsModel, ModelsModel, RunsModel } from './model';
import { MlopsSidebar } from './sidebar';
import { Mlops, PLUGIN_ID } from './tokens';

const REFRESH_COMMAND = 'jupyter-mlops:refresh';

/** What a notification says for the events a person should not miss (the others only go to the feed). */
function notify(event: Mlops.CloudEvent, reveal: () => void): void {
  if (event.type === 'run.failed') {
    const data = event.data as { name?: string; run_id?: string; experiment?: string };
    Notification.error(`Run ${data.name ?? data.run_id} failed (experiment ${data.experiment}).`, {
      autoClose: false,
      actions: [{ label: 'Show jobs', callback: reveal }]
    });
  }
}

/** The MLOps sidebar (Jobs, Models, Events) and notifications. Nothing is awaited in `activate`. */
const plugin: JupyterFrontEndPlugin<void> = {
  id: PLUGIN_ID,
  description: 'MLOps sidebar: tracked jobs, the model registry and a live feed of lifecycle events.',
  autoStart: true,
  optional: [ILayoutRestorer, ICommandPalette],
  activate: (app: JupyterFrontEnd, restorer: ILayoutRestorer | null, palette: ICommandPalette | null) => {
    const settings = ServerConnection.makeSettings();
    const models = {
      runs: new RunsModel(settings),
      models: new ModelsModel(settings),
      events: new EventsModel(settings)
    };
    const sidebar = new MlopsSidebar(models);
    app.shell.add(sidebar, 'left', { rank: 650 });
    restorer?.add(sidebar, sidebar.id);

    const refresh = () => Promise.all([models.runs.refresh(), models.models.refresh()]);
    app.commands.addCommand(REFRESH_COMMAND, { label: 'MLOps: Refresh Jobs and Models', execute: refresh });
    palette?.addItem({ command: REFRESH_COMMAND, category: 'MLOps' });

    models.events.received.connect((_, event) => {
      if (event.type.startsWith('run.')) {
        void models.runs.refresh();
      } else if (event.type.startsWith('model.')) {
        void models.models.refresh();
      }
      notify(event, () => {
        app.shell.activateById(sidebar.id);
        sidebar.reveal(sidebar.jobs);
      });
    });

    // Started, not awaited: JupyterLab's start-up never waits for the MLOps server.
    void refresh();
    void models.events.loadRecent();
    models.events.connect();
  }
};

export default plugin;
