"""A live step table for notebooks: ``mlops.pipelines.run(spec, progress=NotebookProgress())``.

IPython is imported only when the display is first drawn, so the core never depends on it.
"""

from __future__ import annotations

import html
import time
from typing import Any

_COLOURS = {"running": "#1f6feb", "succeeded": "#1a7f37", "reused": "#8250df", "failed": "#cf222e"}


class NotebookProgress:
    """A progress callback that keeps one updating HTML table of step states in the cell's output."""

    def __init__(self) -> None:
        self.states: dict[str, tuple[str, float]] = {}
        self._handle: Any = None
        self._started = time.monotonic()

    def __call__(self, step: str, state: str) -> None:
        self.states[step] = (state, time.monotonic() - self._started)
        from IPython.display import HTML, display

        if self._handle is None:
            self._handle = display(HTML(self.html()), display_id=True)
        else:
            self._handle.update(HTML(self.html()))

    def html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(step)}</td>"
            f'<td style="color:{_COLOURS.get(state.split()[0].rstrip(":"), "#57606a")}">{html.escape(state)}</td>'
            f"<td>{at:.1f} s</td></tr>"
            for step, (state, at) in self.states.items()
        )
        return (
            f'<table class="mlops-table"><thead><tr><th>step</th><th>state</th><th>at</th></tr></thead>{rows}</table>'
        )
