"""A throw-away init-script service the hosts' service managers can restart.

``LabService`` installs ``/etc/init.d/omlab-<token>`` (root only) running a
``sleep`` whose PID is kept in a temp folder, so a test can tell a real
restart (a new PID) from a no-op. It starts and stops it through ``service``,
so that under systemd (after a daemon-reload) the unit's state is right too,
and removes the script on exit.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path

SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          {name}
# Required-Start:
# Required-Stop:
# Default-Start:
# Default-Stop:
# Short-Description: OMServer lab test service
### END INIT INFO
PIDFILE={pidfile}
running() {{ [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }}
start() {{
    running && return 0
    setsid sleep 86400 </dev/null >/dev/null 2>&1 &
    echo $! > "$PIDFILE"
}}
stop() {{
    if running; then kill "$(cat "$PIDFILE")"; fi
    rm -f "$PIDFILE"
}}
case "$1" in
    start) start ;;
    stop) stop ;;
    restart|force-reload|reload) stop; start ;;
    status) if running; then echo running; else echo stopped; exit 3; fi ;;
    *) echo "usage: $0 start|stop|restart|reload|status" >&2; exit 2 ;;
esac
"""


class LabService:
    """``name`` is the service name to give ``ctx.service``; ``pid()`` its current PID."""

    def __init__(self) -> None:
        self.name = f"omlab-{secrets.token_hex(3)}"
        self.root = Path(tempfile.mkdtemp(prefix="omserver-service-"))
        self.pidfile = self.root / "pid"
        self.script = Path("/etc/init.d") / self.name

    def __enter__(self) -> LabService:
        self.script.write_text(SCRIPT.format(name=self.name, pidfile=self.pidfile))
        self.script.chmod(0o755)
        _reload_systemd()  # under systemd, the sysv generator turns the script into a unit
        subprocess.run(["service", self.name, "start"], check=True, capture_output=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["service", self.name, "stop"], check=False, capture_output=True)
        self.script.unlink(missing_ok=True)
        _reload_systemd()
        shutil.rmtree(self.root, ignore_errors=True)

    def pid(self) -> int | None:
        """The running PID, or None when the service is stopped."""
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid


def _reload_systemd() -> None:
    if Path("/run/systemd/system").is_dir():
        subprocess.run(["systemctl", "daemon-reload"], check=True)
