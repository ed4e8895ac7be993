"""A live step table for notebooks: ``mlops.pipelines.run(spec, progress=NotebookProgress())``.

IPython is imported only when the display is first drawn, so the core never depends on it. The trials of a
sweep step show as rows under their step as they finish.
"""

from __future__ import annotations

import html
import time
from typing import Any

_COLOURS = {"running": "#1f6feb", "succeeded": "#1a7f37", "reused": "#8250df", "failed": "#cf222e"}
_TRIAL = "sweeping: "  # the runner's prefix for a finished trial: "sweeping: trial 2/6 succeeded (score=0.93)"


class NotebookProgress:
    """A progress callback that keeps one updating HTML table of step states in the cell's output."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, float]] = {}
        self.trials: dict[str, list[tuple[str, float]]] = {}
        self._handle: Any = None
        self._started = time.monotonic()

    def __call__(self, step: str, state: str) -> None:
        at = time.monotonic() - self._started
        if state.startswith(_TRIAL):
            self.trials.setdefault(step, []).append((state[len(_TRIAL) :], at))
        else:
            self.states[step] = (state, at)
        from IPython.display import HTML, display

        if self._handle is None:
            self._handle = display(HTML(self.html()), display_id=True)
        else:
            self._handle.update(HTML(self.html()))

    def html(self) -> str:
        rows = []
        for step, (state, at) in self.states.items():
            rows.append(f"<tr><td>{html.escape(step)}</td>{_state_cells(state, at)}</tr>")
            for trial, trial_at in self.trials.get(step, []):
                label, _, rest = trial.partition(" ")  # "trial" "2/6 succeeded (score=0.93)"
                number, _, outcome = rest.partition(" ")
                rows.append(
                    f'<tr><td style="padding-left:2em">{html.escape(label)} {html.escape(number)}</td>'
                    f"{_state_cells(outcome, trial_at)}</tr>"
                )
        return (
            '<table class="mlops-table"><thead><tr><th>step</th><th>state</th><th>at</th></tr></thead>'
            f"{''.join(rows)}</table>"
        )


def _state_cells(state: str, at: float) -> str:
    colour = _COLOURS.get(state.split()[0].rstrip(":") if state else "", "#57606a")
    return f'<td style="color:{colour}">{html.escape(state)}</td><td>{at:.1f} s</td>'
