import { Dialog, showDialog } from '@jupyterlab/apputils';
import { deleteIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React, { useState } from 'react';

import { groupByName, ModelsModel } from '../model';
import { Mlops } from '../tokens';
import { RefreshButton, StatusNote } from './common';
import { useModel } from './hooks';

const FILTER_HELP =
  'TagName=TagValue, several joined by commas (AND); a bare TagName: has the tag; name=churn*; * matches anything.';

export function ModelsPanel(props: { model: ModelsModel; deploy: (version: Mlops.ModelVersion) => void }): JSX.Element {
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
              <VersionRow key={`${v.name}:${v.version}`} version={v} model={model} deploy={props.deploy} />
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

function VersionRow(props: {
  version: Mlops.ModelVersion;
  model: ModelsModel;
  deploy: (version: Mlops.ModelVersion) => void;
}): JSX.Element {
  const { version: v, model } = props;
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
