/**
 * Open what a run ran: its notebook through the contents API when the artifact lies under the server's root,
 * else a copy saved under `mlops-runs/`; a cell job's source in a dialog.
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { Contents } from '@jupyterlab/services';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { Mlops } from './tokens';

export const COPIES_FOLDER = 'mlops-runs';

/** Where the copy of a run's notebook goes: `mlops-runs/3f2a9c1d-train.ipynb`. */
export function copyPath(runId: string, artifact: string): string {
  const name = artifact.split('/').pop() || 'notebook.ipynb';
  return `${COPIES_FOLDER}/${runId.slice(0, 8)}-${name}`;
}

export async function openRunCode(app: JupyterFrontEnd, run: Mlops.Run, settings?: api.Settings): Promise<void> {
  const label = run.name ?? run.run_id.slice(0, 8);
  let code: Mlops.RunCode;
  try {
    code = await api.getRunCode(run.run_id, settings);
  } catch (error) {
    Notification.error(`Cannot read the code of run ${label}: ${api.errorMessage(error)}`, { autoClose: 8000 });
    return;
  }
  if (code.contents_path) {
    await app.commands.execute('docmanager:open', { path: code.contents_path });
  } else if (code.notebook && code.notebook_artifact) {
    const path = copyPath(run.run_id, code.notebook_artifact);
    const contents = app.serviceManager.contents;
    await contents.save(COPIES_FOLDER, { type: 'directory' } as Partial<Contents.IModel>);
    await contents.save(path, { type: 'notebook', format: 'json', content: code.notebook });
    await app.commands.execute('docmanager:open', { path });
  } else if (code.cell) {
    const body = new Widget({ node: document.createElement('pre') });
    body.addClass('jp-mlops-code');
    body.node.textContent = code.cell;
    await showDialog({ title: `Cell run by ${label}`, body, buttons: [Dialog.okButton({ label: 'Close' })] });
  } else {
    Notification.info(`Run ${label} kept no notebook and no cell source.`, { autoClose: 5000 });
  }
}
