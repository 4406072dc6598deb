"""systemd's readiness and watchdog protocol, without a dependency.

Under ``Type=notify`` systemd passes ``$NOTIFY_SOCKET`` (a Unix datagram socket, ``@`` for the
abstract namespace); a service sends newline-separated ``KEY=value`` lines to it: ``READY=1``
once it serves, ``WATCHDOG=1`` at least every ``$WATCHDOG_USEC`` microseconds while healthy,
``STATUS=…`` for ``systemctl status``, ``STOPPING=1`` on the way out. Outside systemd the
variable is unset and every call does nothing.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping


class SystemdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        mine = not pid or pid == str(os.getpid())
        self.watchdog_interval: float | None = (
            int(usec) / 1e6 / 2 if usec.isdigit() and int(usec) > 0 and mine else None
        )
        """Seconds between ``WATCHDOG=1`` pings (half systemd's timeout), ``None``: no watchdog."""

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, **fields: str) -> bool:
        """Send ``KEY=value`` lines (``notify(READY="1", STATUS="planning")``); whether sent.
        Never raises: a daemon must not die because systemd went away."""
        if not self._address:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message, self._address)
        except OSError:
            return False
        return True
