import { Dialog, DOMUtils, showDialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { EndpointsModel, suggestDeploymentName } from '../endpoints';
import { Mlops } from '../tokens';

export interface IDeployTarget {
  endpoint: string;
  deployment: string;
}

/** The body of the "Deploy" dialog: which endpoint (one of the existing ones, or typed) and the deployment's name. */
export class DeployForm extends Widget {
  constructor(endpoints: string[], suggestion: string) {
    super();
    this.addClass('jp-mlops-deploy-form');
    const list = document.createElement('datalist');
    list.id = DOMUtils.createDomID();
    for (const name of endpoints) {
      const option = document.createElement('option');
      option.value = name;
      list.append(option);
    }
    this.endpoint = Private.input('Endpoint', endpoints[0] ?? '', 'an existing endpoint');
    this.endpoint.setAttribute('list', list.id);
    this.deployment = Private.input('Deployment name', suggestion, 'blue, green, ... (a-z, 0-9, -)');
    this.node.append(
      Private.label('Endpoint', this.endpoint),
      list,
      Private.label('Deployment name', this.deployment),
      Private.hint('A new deployment gets 0% of the traffic until you set the split in the Endpoints panel.')
    );
  }

  readonly endpoint: HTMLInputElement;
  readonly deployment: HTMLInputElement;

  getValue(): IDeployTarget {
    return { endpoint: this.endpoint.value.trim(), deployment: this.deployment.value.trim() };
  }
}

namespace Private {
  export function input(label: string, value: string, placeholder: string): HTMLInputElement {
    const input = document.createElement('input');
    input.className = 'jp-mlops-input';
    input.value = value;
    input.placeholder = placeholder;
    input.setAttribute('aria-label', label);
    return input;
  }

  export function label(text: string, input: HTMLInputElement): HTMLLabelElement {
    const label = document.createElement('label');
    label.className = 'jp-mlops-field';
    label.append(text, input);
    return label;
  }

  export function hint(text: string): HTMLParagraphElement {
    const hint = document.createElement('p');
    hint.className = 'jp-mlops-muted';
    hint.textContent = text;
    return hint;
  }
}

/** Ask where to deploy `version`, then deploy it; the Endpoints panel shows the outcome. */
export async function promptDeploy(
  endpoints: EndpointsModel,
  version: Mlops.ModelVersion,
  reveal: () => void
): Promise<void> {
  if (!endpoints.endpoints.length) {
    await endpoints.refresh();
  }
  const form = new DeployForm(
    endpoints.endpoints.map(e => e.name),
    suggestDeploymentName(version.name, version.version)
  );
  const answer = await showDialog({
    title: `Deploy ${version.name}:${version.version}`,
    body: form,
    focusNodeSelector: 'input',
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label: 'Deploy' })]
  });
  if (!answer.button.accept || !answer.value) {
    return;
  }
  const { endpoint, deployment } = answer.value;
  reveal();
  if (!endpoint || !deployment) {
    endpoints.deployMessage = { kind: 'error', text: 'Name both the endpoint and the deployment to deploy to.' };
    endpoints.select(endpoint);
    return;
  }
  endpoints.deployMessage = {
    kind: 'info',
    text: `Deploying ${version.name}:${version.version} to ${endpoint}/${deployment}…`
  };
  endpoints.select(endpoint);
  await endpoints.deploy(endpoint, deployment, `${version.name}:${version.version}`);
}
