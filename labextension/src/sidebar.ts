/**
 * The "MLOps" sidebar: a JupyterLab SidePanel whose accordion holds one section per feature. Endpoints, pipelines
 * and monitors arrive as more sections (`addSection`), without touching the existing ones.
 */
import { LabIcon, ReactWidget, SidePanel } from '@jupyterlab/ui-components';
import { AccordionPanel, Widget } from '@lumino/widgets';
import React from 'react';

import { EventsPanel } from './components/EventsPanel';
import { JobsPanel } from './components/JobsPanel';
import { ModelsPanel } from './components/ModelsPanel';
import { EventsModel, ModelsModel, RunsModel } from './model';
import { SIDEBAR_ID } from './tokens';
import mlopsSvg from '../style/icons/mlops.svg';

export const mlopsIcon = new LabIcon({ name: 'jupyter-mlops:icon', svgstr: mlopsSvg });

export interface IModels {
  runs: RunsModel;
  models: ModelsModel;
  events: EventsModel;
}

export class MlopsSidebar extends SidePanel {
  constructor(readonly models: IModels) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-mlops-sidebar');
    this.title.icon = mlopsIcon;
    this.title.caption = 'MLOps';
    this.jobs = this.addSection(
      'Jobs',
      'jobs',
      ReactWidget.create(React.createElement(JobsPanel, { model: models.runs }))
    );
    this.modelsSection = this.addSection(
      'Models',
      'models',
      ReactWidget.create(React.createElement(ModelsPanel, { model: models.models }))
    );
    this.eventsSection = this.addSection(
      'Events',
      'events',
      ReactWidget.create(React.createElement(EventsPanel, { model: models.events }))
    );
  }

  readonly jobs: Widget;
  readonly modelsSection: Widget;
  readonly eventsSection: Widget;

  /** Add a section (a titled accordion pane) to the sidebar. */
  addSection(label: string, key: string, widget: Widget): Widget {
    widget.id = `jp-mlops-${key}`;
    widget.title.label = label;
    widget.addClass('jp-mlops-section');
    this.addWidget(widget);
    return widget;
  }

  /** Expand one section (collapsing none of the others). */
  reveal(widget: Widget): void {
    const index = this.widgets.indexOf(widget);
    if (index >= 0 && !widget.isVisible && this.content instanceof AccordionPanel) {
      this.content.expand(index);
    }
  }
}
