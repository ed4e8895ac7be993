/**
 * The comparison of two model versions in a main-area tab: parameters, metrics, training data, packages, code and
 * the training notebooks cell by cell, rendered from the JSON of `GET models/{name}/compare` (text nodes only: no
 * markup from the server reaches the page).
 */
import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { mlopsIcon } from './icon';
import { Mlops } from './tokens';

type Value = string | number | null | undefined;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string | null,
  className?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) {
    node.textContent = text;
  }
  if (className) {
    node.className = className;
  }
  return node;
}

function show(value: Value, empty = ''): string {
  if (value === null || value === undefined) {
    return empty;
  }
  return typeof value === 'number' ? String(Number(value.toPrecision(6))) : value;
}

function table(header: string[], rows: string[][], same: boolean[] = []): HTMLTableElement {
  const node = el('table', null, 'jp-mlops-table jp-mlops-compare-table');
  const head = node.createTHead().insertRow();
  for (const h of header) {
    head.append(el('th', h));
  }
  const body = node.createTBody();
  rows.forEach((row, i) => {
    const tr = body.insertRow();
    if (same[i]) {
      tr.className = 'jp-mlops-compare-same';
    }
    for (const cell of row) {
      tr.append(el('td', cell));
    }
  });
  return node;
}

/** A unified diff as lines coloured by their first character. */
function diff(lines: string[]): HTMLPreElement {
  const pre = el('pre', null, 'jp-mlops-compare-diff');
  for (const line of lines) {
    const kind = line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : line.startsWith('@') ? 'hunk' : '';
    pre.append(el('span', line + '\n', kind ? `jp-mlops-diff-${kind}` : undefined));
  }
  return pre;
}

function counted(title: string, rows: { changed?: boolean }[], same: number | undefined): string {
  const differ = rows.filter(r => r.changed !== false).length;
  return `${title}: ${differ} differ, ${same ?? 0} the same`;
}

function side(s: Mlops.Comparison['a']): string {
  const extra = [...s.aliases.map(a => `@${a}`), s.run_id ? `run ${s.run_id.slice(0, 8)}` : 'no run'];
  return `${s.ref} (${extra.join(', ')})`;
}

function data(d: Mlops.Comparison['data'][number]['a']): string {
  if (!d) {
    return '(not used)';
  }
  const parts = [
    d.digest ? `sha256 ${d.digest.slice(0, 12)}` : '',
    d.rows !== null && d.rows !== undefined ? `${d.rows} rows` : ''
  ];
  const what = parts.filter(Boolean).join(', ');
  return what ? `${d.ref} (${what})` : d.ref;
}

function commit(sha: string | null | undefined, dirty: boolean | undefined): string {
  return sha ? sha.slice(0, 12) + (dirty ? ' + uncommitted changes' : '') : '(none)';
}

function cellTitle(c: Mlops.Comparison['notebook']['cells'][number]): string {
  let where = c.change === 'added' ? `cell ${c.index_b}` : `cell ${c.index_a}`;
  if ((c.change === 'modified' || c.change === 'outputs') && c.index_a !== c.index_b) {
    where = `cell ${c.index_a} → ${c.index_b}`;
  }
  return `${where} (${c.cell_type}) ${c.change === 'outputs' ? 'outputs changed' : c.change}`;
}

/** The report's DOM (exported for the unit tests). */
export function renderComparison(report: Mlops.Comparison): HTMLElement {
  const root = el('div', null, 'jp-mlops-compare-report');
  const a = report.a.ref;
  const b = report.b.ref;
  root.append(el('h2', `${side(report.a)} → ${side(report.b)}`));
  const section = (title: string): HTMLElement => {
    const node = el('section', null, 'jp-mlops-compare-section');
    node.append(el('h3', title));
    root.append(node);
    return node;
  };
  for (const [title, key, rows] of [
    ['Parameters', 'params', report.params],
    ['Metrics', 'metrics', report.metrics]
  ] as const) {
    const node = section(counted(title, rows, report.same[key]));
    node.dataset.section = key;
    if (rows.length) {
      node.append(
        table(
          [title.slice(0, -1).toLowerCase(), a, b],
          rows.map(r => [r.name, show(r.a), show(r.b)]),
          rows.map(r => !r.changed)
        )
      );
    }
  }
  const training = section(counted('Training data', report.data, report.same['data']));
  training.dataset.section = 'data';
  if (report.data.length) {
    training.append(
      table(
        ['input', a, b, 'profile'],
        report.data.map(d => [d.name, data(d.a), data(d.b), (d.notes ?? []).join('; ')]),
        report.data.map(d => !d.changed)
      )
    );
  }
  const env = report.environment;
  const environment = section(
    `Environment: python ${env.python_a ?? '?'} → ${env.python_b ?? '?'}; ` +
      counted('packages', env.packages, report.same['packages']).toLowerCase()
  );
  environment.dataset.section = 'environment';
  if (env.packages.length) {
    environment.append(
      table(
        ['package', a, b],
        env.packages.map(p => [p.name, show(p.a, '(none)'), show(p.b, '(none)')]),
        env.packages.map(p => !p.changed)
      )
    );
  }
  const code = report.code;
  let line = `Code: commit ${commit(code.commit_a, code.dirty_a)} → ${commit(code.commit_b, code.dirty_b)}`;
  line += code.repository ? ` in ${code.repository}` : '';
  line += code.note ? `: ${code.note}` : '';
  const codeSection = section(line);
  codeSection.dataset.section = 'code';
  if (code.stat || code.diff) {
    const lines = [...(code.stat ?? '').split('\n'), '', ...(code.diff ?? '').split('\n')];
    codeSection.append(diff(lines.slice(0, 2000)));
  }
  const nb = report.notebook;
  const books = `${nb.artifact_a ?? '(none)'} → ${nb.artifact_b ?? '(none)'}`;
  const notebook = section(`Notebook: ${books}: ${nb.note ?? `${nb.cells.length} cell(s) differ`}`);
  notebook.dataset.section = 'notebook';
  for (const c of nb.cells) {
    const cell = el('div', null, `jp-mlops-compare-cell jp-mlops-compare-${c.change}`);
    cell.append(el('div', cellTitle(c), 'jp-mlops-compare-cell-title'));
    let lines = c.diff ?? [];
    if (!lines.length && c.change === 'added') {
      lines = (c.source_b ?? '').split('\n').map(l => '+' + l);
    } else if (!lines.length && c.change === 'removed') {
      lines = (c.source_a ?? '').split('\n').map(l => '-' + l);
    }
    if (lines.length) {
      cell.append(diff(lines));
    }
    notebook.append(cell);
  }
  if (report.missing.length) {
    const missing = section('Not compared');
    const list = el('ul');
    for (const m of report.missing) {
      list.append(el('li', m));
    }
    missing.append(list);
  }
  return root;
}

export class CompareView extends Widget {
  constructor(
    readonly name: string,
    readonly a: string | number,
    readonly b: string | number,
    private readonly settings?: api.Settings
  ) {
    super();
    this.addClass('jp-mlops-compare');
  }

  /** Fetch the comparison and render it; an error says what is wrong (an unknown version, the same twice). */
  async load(): Promise<void> {
    this.node.replaceChildren(el('div', 'Comparing…', 'jp-mlops-empty'));
    try {
      const report = await api.compareVersions(this.name, this.a, this.b, {}, this.settings);
      this.node.replaceChildren(renderComparison(report));
    } catch (error) {
      const message = el('div', api.errorMessage(error), 'jp-mlops-error');
      message.setAttribute('role', 'alert');
      this.node.replaceChildren(message);
    }
  }
}

/** Open (or bring forward and reload) the tab comparing `b` of `name` with `a`. */
export function openCompare(
  app: JupyterFrontEnd,
  name: string,
  a: string | number,
  b: string | number,
  settings?: api.Settings
): void {
  const id = `jp-mlops-compare-${name}-${a}-${b}`.replace(/[^\w-]/g, '_');
  for (const widget of app.shell.widgets('main')) {
    if (widget.id === id && widget instanceof MainAreaWidget && widget.content instanceof CompareView) {
      app.shell.activateById(id);
      void widget.content.load();
      return;
    }
  }
  const content = new CompareView(name, a, b, settings);
  const widget = new MainAreaWidget({ content, reveal: content.load() });
  widget.id = id;
  widget.title.label = `Compare ${name}:${a} → ${b}`;
  widget.title.caption = `What differs between ${name} version ${a} and version ${b}`;
  widget.title.icon = mlopsIcon;
  widget.title.closable = true;
  app.shell.add(widget, 'main');
  app.shell.activateById(id);
}
