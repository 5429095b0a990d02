"""The line under the status line that keeps failures in sight until they are looked at."""

from __future__ import annotations

from textual.widgets import Static

from tui.app.alerts import Alerts


class AlertLine(Static):
    def __init__(self, alerts: Alerts, **kwargs) -> None:
        super().__init__("", **kwargs)
        self.alerts = alerts
        self._shown: object = None

    def on_mount(self) -> None:
        self.display = False

    def refresh_alerts(self) -> None:
        """Show what the alerts hold now (only when that changed: no bytes otherwise)."""
        text = self.alerts.text()
        if text == self._shown:
            return
        self._shown = text
        self.update(text)
        self.display = bool(self.alerts.unseen)
