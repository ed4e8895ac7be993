/**
 * The "MLOps" sidebar: a JupyterLab SidePanel whose accordion holds one section per feature (jobs, models,
 * endpoints, pipelines, monitors, events). What a section cannot do by itself (open a tab, a notebook, a dialog
 * that changes another section) it asks of `IActions`, which the plugin provides.
 */
import { ReactWidget, SidePanel } from '@jupyterlab/ui-components';
import { AccordionPanel, Widget } from '@lumino/widgets';
import React from 'react';

import { EndpointsPanel } from './components/EndpointsPanel';
import { EventsPanel } from './components/EventsPanel';
import { JobsPanel } from './components/JobsPanel';
import { ModelsPanel } from './components/ModelsPanel';
import { MonitorsPanel } from './components/MonitorsPanel';
import { PipelinesPanel } from './components/PipelinesPanel';
import { EndpointsModel } from './endpoints';
import { mlopsIcon } from './icon';
import { EventsModel, ModelsModel, RunsModel } from './model';
import { MonitorsModel } from './monitors';
import { PipelinesModel } from './pipelines';
import { Mlops, SIDEBAR_ID } from './tokens';

export interface IModels {
  runs: RunsModel;
  models: ModelsModel;
  endpoints: EndpointsModel;
  pipelines: PipelinesModel;
  monitors: MonitorsModel;
  events: EventsModel;
}

export interface IActions {
  openCode: (run: Mlops.Run) => void;
  openReport: (monitor: string) => void;
  deploy: (version: Mlops.ModelVersion) => void;
  /** Open the comparison of version `b` of `name` with version `a` (optional: the panels work without it). */
  compare?: (name: string, a: number, b: number) => void;
  /** Open the dashboard of an endpoint or a monitor in a tab (optional: without it the panels offer none). */
  dashboard?: (kind: 'endpoint' | 'monitor', name: string) => void;
}

export class MlopsSidebar extends SidePanel {
  constructor(
    readonly models: IModels,
    actions: IActions
  ) {
    super();
    this.id = SIDEBAR_ID;
    this.addClass('jp-mlops-sidebar');
    this.title.icon = mlopsIcon;
    this.title.caption = 'MLOps';
    const react = (element: React.ReactElement) => ReactWidget.create(element);
    this.jobs = this.addSection(
      'Jobs',
      'jobs',
      react(React.createElement(JobsPanel, { model: models.runs, openCode: actions.openCode }))
    );
    this.modelsSection = this.addSection(
      'Models',
      'models',
      react(
        React.createElement(ModelsPanel, { model: models.models, deploy: actions.deploy, compare: actions.compare })
      )
    );
    this.endpointsSection = this.addSection(
      'Endpoints',
      'endpoints',
      react(
        React.createElement(EndpointsPanel, {
          model: models.endpoints,
          shown: () => this.endpointsSection.isVisible,
          dashboard: actions.dashboard && ((name: string) => actions.dashboard?.('endpoint', name))
        })
      )
    );
    this.pipelinesSection = this.addSection(
      'Pipelines',
      'pipelines',
      react(React.createElement(PipelinesPanel, { model: models.pipelines }))
    );
    this.monitorsSection = this.addSection(
      'Monitors',
      'monitors',
      react(
        React.createElement(MonitorsPanel, {
          model: models.monitors,
          openReport: actions.openReport,
          dashboard: actions.dashboard && ((name: string) => actions.dashboard?.('monitor', name))
        })
      )
    );
    this.eventsSection = this.addSection(
      'Events',
      'events',
      react(React.createElement(EventsPanel, { model: models.events }))
    );
    // Six open sections leave each too little height to use: these two open on demand (or from a notification)
    this.collapse(this.pipelinesSection);
    this.collapse(this.monitorsSection);
  }

  readonly jobs: Widget;
  readonly modelsSection: Widget;
  readonly endpointsSection: Widget;
  readonly pipelinesSection: Widget;
  readonly monitorsSection: Widget;
  readonly eventsSection: Widget;

  /** Add a section (a titled accordion pane) to the sidebar. */
  addSection(label: string, key: string, widget: Widget): Widget {
    widget.id = `jp-mlops-${key}`;
    widget.title.label = label;
    widget.addClass('jp-mlops-section');
    this.addWidget(widget);
    return widget;
  }

  collapse(widget: Widget): void {
    const index = this.widgets.indexOf(widget);
    if (index >= 0 && this.content instanceof AccordionPanel) {
      this.content.collapse(index);
    }
  }

  /** Expand one section (collapsing none of the others). */
  reveal(widget: Widget): void {
    const index = this.widgets.indexOf(widget);
    if (index >= 0 && !widget.isVisible && this.content instanceof AccordionPanel) {
      this.content.expand(index);
    }
  }
}
