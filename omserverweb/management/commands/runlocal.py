"""``make run``: the whole platform on one machine, for a first look.

Sets up the database (bootstrap), gives the web console its own daemon key,
then runs the daemon and the web under uWSGI side by side until Ctrl-C. The
lab backend needs nothing from outside: Ansible's local connection, so every
inventory server is this machine (override with OMSERVER_DAEMON_BACKEND and
friends to point it at real hosts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from omserver.client import Client, DaemonError
from omserver.config import env_name
from omserver.files import write_private
from omserver.keys import KeyStore, key_file

LAB_DEFAULTS = {
    env_name("daemon.backend"): "ansible",
    env_name("ansible.connection"): "local",
}
WEB_CLIENT = "web"


class Command(BaseCommand):
    help = "Set up and run the daemon and the web console together (Ctrl-C stops both)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, host: str, port: int, **options) -> None:
        call_command("bootstrap")
        call_command("collectstatic", interactive=False, verbosity=0)
        env = {**LAB_DEFAULTS, **os.environ}
        key = env[env_name("daemon.client_key")] = self._web_key()
        bin_dir = Path(sys.executable).parent
        daemon = subprocess.Popen([sys.executable, "-m", "omserver", "serve"], env=env)
        self._wait_for_daemon(daemon, key)  # so that the first Run never meets a daemon not yet up
        processes = {
            "the daemon": daemon,
            "uWSGI": subprocess.Popen(  # noqa: S603 (our own argv; host and port are options)
                [
                    str(bin_dir / "uwsgi"),
                    "--http-socket",
                    f"{host}:{port}",
                    "--module",
                    "omserverweb.wsgi:application",
                    "--master",
                    "--processes",
                    "2",
                    "--threads",
                    "4",
                    "--need-app",
                    "--die-on-term",
                    "--static-map",
                    f"{settings.STATIC_URL.rstrip('/')}={settings.STATIC_ROOT}",
                    "--disable-logging",
                    "--log-4xx",
                    "--log-5xx",
                ],
                env=env,
            ),
        }
        self.stdout.write(self.style.SUCCESS(f"OMServer web console: http://{host}:{port}/"))
        signal.signal(signal.SIGTERM, _interrupt)
        exited = []
        try:
            while not (exited := [n for n, p in processes.items() if p.poll() is not None]):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.terminate()
            for process in processes.values():
                process.wait(30)
        if exited:
            raise CommandError(f"stopped because {' and '.join(exited)} exited")

    @staticmethod
    def _wait_for_daemon(process: subprocess.Popen, key: str, seconds: float = 120) -> None:
        with Client(settings.DAEMON_ADDRESS, WEB_CLIENT, key, timeout=2) as client:
            deadline = time.monotonic() + seconds
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    return
                except DaemonError:
                    time.sleep(0.3)
        process.terminate()
        raise CommandError(f"the daemon did not answer at {settings.DAEMON_ADDRESS}")

    def _web_key(self) -> str:
        """The web console's key: created once, kept in the data folder (0600)."""
        path = Path(settings.DATA_DIR) / "web-client.key"
        if settings.DAEMON_CLIENT_KEY:
            return settings.DAEMON_CLIENT_KEY
        store = KeyStore(key_file(settings.CONFIG))
        if path.exists() and store.cipher_for(WEB_CLIENT) is not None:
            return path.read_text().strip()
        if any(c.name == WEB_CLIENT and not c.revoked for c in store.clients()):
            store.revoke(WEB_CLIENT)  # its key file is gone: issue a new one
        key = store.add(WEB_CLIENT)
        write_private(path, key + "\n")
        return key


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
