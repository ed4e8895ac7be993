import { refreshIcon, ToolbarButtonComponent } from '@jupyterlab/ui-components';
import React from 'react';

/** The pieces every panel shows the same way: its refresh button, its error line and its status message. */

export function RefreshButton(props: { onClick: () => void }): JSX.Element {
  return <ToolbarButtonComponent icon={refreshIcon} tooltip="Refresh" onClick={props.onClick} />;
}

export function ErrorNote(props: { error: string | null }): JSX.Element | null {
  return props.error ? (
    <div className="jp-mlops-error" role="alert">
      {props.error}
    </div>
  ) : null;
}

export function StatusNote(props: {
  message: { kind: string; text: string } | null;
  onDismiss?: () => void;
}): JSX.Element | null {
  const { message, onDismiss } = props;
  if (!message) {
    return null;
  }
  return (
    <div className={`jp-mlops-message jp-mlops-message-${message.kind}`} role="status">
      <span>{message.text}</span>
      {onDismiss && (
        <button className="jp-mlops-link" onClick={onDismiss} aria-label="Dismiss">
          ×
        </button>
      )}
    </div>
  );
}
