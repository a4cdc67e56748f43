"""A throw-away init-script service the hosts' service managers can restart.

``LabService`` installs ``/etc/init.d/omlab-<token>`` running a ``sleep``
whose PID is kept in a temp folder, so a test can tell a real restart (a new
PID) from a no-op. It removes the script and stops the process on exit.
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
        subprocess.run([str(self.script), "start"], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run([str(self.script), "stop"], check=False)
        self.script.unlink(missing_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def pid(self) -> int | None:
        """The running PID, or None when the service is stopped."""
        try:
            pid = int(self.pidfile.read_text())
            os.kill(pid, 0)
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        return pid
