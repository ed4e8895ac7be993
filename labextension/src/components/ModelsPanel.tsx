import { Dialog, showDialog } from '@jupyterlab/apputils';
import { deleteIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import { Widget } from '@lumino/widgets';
import React, { useState } from 'react';

import { baselineOf, groupByName, ModelsModel } from '../model';
import { Mlops } from '../tokens';
import { RefreshButton, StatusNote } from './common';
import { useModel } from './hooks';

const FILTER_HELP =
  'TagName=TagValue, several joined by commas (AND); a bare TagName: has the tag; name=churn*; * matches anything.';

export type CompareAction = (name: string, a: number, b: number) => void;

export function ModelsPanel(props: {
  model: ModelsModel;
  deploy: (version: Mlops.ModelVersion) => void;
  compare?: CompareAction;
}): JSX.Element {
  const model = useModel(props.model);
  const [filter, setFilter] = useState(model.filter);
  const { items, page, pages } = model.current;
  const first = model.versions.length ? page * 50 + 1 : 0;
  return (
    <div className="jp-mlops-panel jp-mlops-models">
      <form
        className="jp-mlops-toolbar"
        onSubmit={e => {
          e.preventDefault();
          void model.applyFilter(filter);
        }}
      >
        <input
          className="jp-mlops-input jp-mlops-filter"
          type="search"
          placeholder="Filter: stage=prod,team=risk"
          title={FILTER_HELP}
          aria-label="Filter model versions"
          value={filter}
          onChange={e => setFilter(e.target.value)}
        />
        <RefreshButton onClick={() => void model.refresh()} />
      </form>
      {model.filterError && (
        <div className="jp-mlops-error jp-mlops-filter-error" role="alert">
          {model.filterError}
        </div>
      )}
      <StatusNote message={model.message} onDismiss={() => model.dismissMessage()} />
      <div className="jp-mlops-summary">
        <span className="jp-mlops-grow">
          {model.loading
            ? 'Loading…'
            : `${model.versions.length} version${model.versions.length === 1 ? '' : 's'} of ${model.modelCount} model${
                model.modelCount === 1 ? '' : 's'
              }${model.filter ? ` matching ${model.filter}` : ''}`}
        </span>
        <label className="jp-mlops-check" title="Show archived versions too">
          <input
            type="checkbox"
            checked={model.includeArchived}
            onChange={e => void model.applyFilter(filter, e.target.checked)}
          />
          archived
        </label>
      </div>
      <div className="jp-mlops-list">
        {groupByName(items).map(([name, versions]) => (
          <div className="jp-mlops-group" key={name}>
            <div className="jp-mlops-group-name">{name}</div>
            {versions.map(v => (
              <VersionRow
                key={`${v.name}:${v.version}`}
                version={v}
                model={model}
                deploy={props.deploy}
                compare={props.compare}
              />
            ))}
          </div>
        ))}
        {!model.loading && !model.versions.length && !model.filterError && (
          <div className="jp-mlops-empty">
            {model.filter
              ? 'No version matches this filter.'
              : 'No models yet: register one with mlops.register_model(model, "name").'}
          </div>
        )}
      </div>
      {pages > 1 && (
        <div className="jp-mlops-pager">
          <button className="jp-mlops-button" disabled={page === 0} onClick={() => model.setPage(page - 1)}>
            ‹ Prev
          </button>
          <span>
            {first}–{first + items.length - 1} of {model.versions.length}
          </span>
          <button className="jp-mlops-button" disabled={page >= pages - 1} onClick={() => model.setPage(page + 1)}>
            Next ›
          </button>
        </div>
      )}
    </div>
  );
}

/** A dialog body with a text box: the reviewer's comment, or a reason; and an alias box for a promotion. */
class ReleaseForm extends Widget {
  constructor(placeholder: string, alias?: string) {
    super();
    this.addClass('jp-mlops-release-form');
    if (alias !== undefined) {
      this.alias = document.createElement('input');
      this.alias.className = 'jp-mlops-input jp-mlops-release-alias';
      this.alias.value = alias;
      this.alias.setAttribute('aria-label', 'Alias');
      const label = document.createElement('label');
      label.textContent = 'Alias ';
      label.append(this.alias);
      this.node.append(label);
    }
    this.text = document.createElement('textarea');
    this.text.className = 'jp-mlops-input jp-mlops-release-comment';
    this.text.placeholder = placeholder;
    this.text.rows = 3;
    this.text.setAttribute('aria-label', placeholder);
    this.node.append(this.text);
  }

  readonly text: HTMLTextAreaElement;
  readonly alias: HTMLInputElement | null = null;

  getValue(): { text: string; alias: string } {
    return { text: this.text.value.trim(), alias: this.alias?.value.trim() ?? '' };
  }
}

async function ask(
  title: string,
  placeholder: string,
  label: string,
  alias?: string
): Promise<{ text: string; alias: string } | null> {
  const answer = await showDialog({
    title,
    body: new ReleaseForm(placeholder, alias),
    buttons: [Dialog.cancelButton(), Dialog.okButton({ label })],
    focusNodeSelector: alias === undefined ? 'textarea' : 'input'
  });
  return answer.button.accept && answer.value ? answer.value : null;
}

function gateTitle(state: Mlops.ReleaseState): string {
  const g = state.gate;
  if (g.verdict === 'none') {
    return 'No evaluation gate ran on this version';
  }
  const against = g.baseline ? `against ${g.baseline}` : 'with no baseline';
  return `Gate ${g.verdict} ${against}${g.run_id ? ` (run ${g.run_id})` : ''}${g.evaluated_at ? ` at ${g.evaluated_at}` : ''}`;
}

function approvalTitle(a: Mlops.Approval): string {
  const lines = [];
  if (a.requested_by) {
    lines.push(
      `Asked by ${a.requested_by}${a.requested_at ? ` at ${a.requested_at}` : ''}${a.reason ? `: ${a.reason}` : ''}`
    );
  }
  if (a.decided_by) {
    lines.push(
      `${a.status} by ${a.decided_by}${a.decided_at ? ` at ${a.decided_at}` : ''}${a.comment ? `: ${a.comment}` : ''}`
    );
  }
  return lines.join('\n') || String(a.status);
}

const APPROVAL_LABEL: Record<string, string> = {
  PendingApproval: 'pending approval',
  Approved: 'approved',
  Rejected: 'rejected'
};

/** The gate's verdict and the approval state, as badges. */
function ReleaseBadges(props: { state: Mlops.ReleaseState | undefined }): JSX.Element | null {
  const { state } = props;
  if (!state) {
    return null;
  }
  const status = state.approval.status;
  return (
    <>
      {state.gate.verdict !== 'none' && (
        <span
          className={`jp-mlops-chip jp-mlops-badge jp-mlops-gate jp-mlops-gate-${state.gate.verdict}`}
          title={gateTitle(state)}
          data-gate={state.gate.verdict}
        >
          gate {state.gate.verdict === 'passed' ? '✓' : '✗'}
        </span>
      )}
      {status && (
        <span
          className={`jp-mlops-chip jp-mlops-badge jp-mlops-approval jp-mlops-approval-${status}`}
          title={approvalTitle(state.approval)}
          data-approval={status}
        >
          {APPROVAL_LABEL[status] ?? status}
        </span>
      )}
    </>
  );
}

function VersionRow(props: {
  version: Mlops.ModelVersion;
  model: ModelsModel;
  deploy: (version: Mlops.ModelVersion) => void;
  compare?: CompareAction;
}): JSX.Element {
  const { version: v, model } = props;
  const state = model.releaseOf(v);
  const status = state?.approval.status ?? null;
  const what = `${v.name}:${v.version}`;
  const baseline = baselineOf(v, model.versions);
  const decide = async (verb: 'approval' | 'approve' | 'reject') => {
    const titles = { approval: `Request approval of ${what}`, approve: `Approve ${what}`, reject: `Reject ${what}` };
    const placeholder = verb === 'approval' ? 'Why it should be approved' : 'Comment (what you looked at)';
    const label = { approval: 'Request', approve: 'Approve', reject: 'Reject' }[verb];
    const answer = await ask(titles[verb], placeholder, label);
    if (answer) {
      await model.decide(v.name, v.version, verb, answer.text);
    }
  };
  const promote = async () => {
    const answer = await ask(`Promote ${what}`, 'Reason (kept in the history)', 'Promote', 'champion');
    if (answer && answer.alias) {
      await model.promote(v.name, v.version, answer.alias, answer.text);
    }
  };
  const [aliasing, setAliasing] = useState(false);
  const [alias, setAlias] = useState('');
  const remove = async () => {
    const answer = await showDialog({
      title: `Delete ${v.name}:${v.version}?`,
      body: 'The version and its registry entry are deleted; the run and its files stay.',
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (answer.button.accept) {
      await model.deleteVersion(v.name, v.version);
    }
  };
  return (
    <div className={`jp-mlops-row jp-mlops-version${v.archived ? ' jp-mlops-archived' : ''}`} data-version={v.version}>
      <span className="jp-mlops-version-number" title={v.description ?? v.source}>
        v{v.version}
      </span>
      <span className="jp-mlops-chips">
        {v.aliases.map(a => (
          <span className="jp-mlops-chip jp-mlops-alias" key={a} title={`${v.name}@${a}`}>
            @{a}
          </span>
        ))}
        {Object.entries(v.tags).map(([k, value]) => (
          <span className="jp-mlops-chip jp-mlops-tag" key={k}>
            {k}={value}
          </span>
        ))}
        {v.archived && <span className="jp-mlops-chip">archived</span>}
        <ReleaseBadges state={state} />
      </span>
      {aliasing ? (
        <form
          className="jp-mlops-inline"
          onSubmit={e => {
            e.preventDefault();
            void model.setAlias(v.name, alias, v.version).then(ok => ok && setAliasing(false));
          }}
        >
          <input
            className="jp-mlops-input"
            autoFocus
            placeholder="alias"
            aria-label="Alias name"
            value={alias}
            onChange={e => setAlias(e.target.value)}
            onKeyDown={e => e.key === 'Escape' && setAliasing(false)}
          />
        </form>
      ) : (
        <span className="jp-mlops-actions">
          <button className="jp-mlops-link" title="Point an alias at this version" onClick={() => setAliasing(true)}>
            +alias
          </button>
          {(status === null || status === 'Rejected') && (
            <button
              className="jp-mlops-link jp-mlops-request-approval"
              title={`Ask for an approval of ${what}`}
              onClick={() => void decide('approval')}
            >
              request approval
            </button>
          )}
          {status === 'PendingApproval' && (
            <button
              className="jp-mlops-link jp-mlops-approve"
              title={`Approve ${what}`}
              onClick={() => void decide('approve')}
            >
              approve
            </button>
          )}
          {(status === 'PendingApproval' || status === 'Approved') && (
            <button
              className="jp-mlops-link jp-mlops-reject"
              title={`Reject ${what}`}
              onClick={() => void decide('reject')}
            >
              reject
            </button>
          )}
          {!v.archived && (
            <button
              className="jp-mlops-link jp-mlops-promote"
              title={`Move a protected alias (champion) to ${what}, as the release policy allows`}
              onClick={() => void promote()}
            >
              promote
            </button>
          )}
          {props.compare && baseline !== null && (
            <button
              className="jp-mlops-link jp-mlops-compare-button"
              title={`Compare ${what} with version ${baseline}`}
              onClick={() => props.compare?.(v.name, baseline, v.version)}
            >
              compare
            </button>
          )}
          {!v.archived && (
            <button
              className="jp-mlops-link"
              title={`Deploy ${v.name}:${v.version} to an endpoint`}
              onClick={() => props.deploy(v)}
            >
              deploy
            </button>
          )}
          <ToolbarButtonComponent
            icon={deleteIcon}
            tooltip={`Delete ${v.name}:${v.version}`}
            onClick={() => void remove()}
          />
        </span>
      )}
    </div>
  );
}
