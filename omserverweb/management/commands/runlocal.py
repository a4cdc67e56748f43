"""``make run``: the whole platform on one machine, for a first look.

Sets up the database (bootstrap), gives the web console and the local ``omserver``
CLI each its own daemon key (the web's scope; the CLI's: every module on every
inventory server, its own jobs), then runs the daemon and the web under uWSGI side by
side until Ctrl-C, their output in ``<data dir>/log/``. The lab backend needs
nothing from outside: Ansible's local connection, so every inventory server is
this machine (override with OMSERVER_DAEMON_BACKEND and friends to point it at
real hosts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from omserver.cli import LAB_CLI_CLIENT, LAB_CLI_KEY_FILE
from omserver.client import Client, DaemonError
from omserver.config import env_name
from omserver.files import write_private
from omserver.protocol.keys import KeyStore, key_file
from omserver.protocol.scope import ANY, WEB, Scope

LAB_DEFAULTS = {
    env_name("daemon.backend"): "ansible",
    env_name("ansible.connection"): "local",
}
WEB_CLIENT = "web"
LAB_CLI_SCOPE = Scope(modules=None, hosts=(ANY,))


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
        # the key the `omserver` CLI finds in the data folder when none is configured
        self._client_key(LAB_CLI_CLIENT, Path(settings.DATA_DIR) / LAB_CLI_KEY_FILE, LAB_CLI_SCOPE)
        log_dir = Path(settings.DATA_DIR) / "log"
        log_dir.mkdir(parents=True, exist_ok=True)
        logs = {"the daemon": log_dir / "daemon.log", "uWSGI": log_dir / "uwsgi.log"}
        bin_dir = Path(sys.executable).parent
        processes: dict[str, subprocess.Popen] = {}
        signal.signal(signal.SIGTERM, _interrupt)
        signal.signal(signal.SIGINT, _interrupt)  # even when started with SIGINT ignored
        exited = []
        try:
            processes["the daemon"] = _start(
                [sys.executable, "-m", "omserver", "serve"], env, logs["the daemon"]
            )
            # so that the first Run never meets a daemon not yet up
            self._wait_for_daemon(processes["the daemon"], key, logs["the daemon"])
            processes["uWSGI"] = _start(
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
                env,
                logs["uWSGI"],
            )
            url = f"http://{host}:{port}/"
            _wait_for_web(url, processes["uWSGI"], logs["uWSGI"])
            self._announce(url, env, bin_dir, logs)
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
            raise CommandError(
                f"stopped because {' and '.join(exited)} exited: see "
                + ", ".join(_shown(logs[name]) for name in exited)
                + "\n"
                + "".join(_tail(logs[name]) for name in exited)
            )

    def _announce(
        self, url: str, env: dict[str, str], bin_dir: Path, logs: dict[str, Path]
    ) -> None:
        """What a person needs, after the noise: where to log in, with what, and the CLI."""
        password_file = Path(settings.DATA_DIR) / "admin-password"
        if password_file.exists():
            login = f"admin / {password_file.read_text().strip()}   ({_shown(password_file)})"
        else:
            login = "admin (its password is the one you set)"
        backend = env[env_name("daemon.backend")]
        if backend == "ansible" and env.get(env_name("ansible.connection"), "ssh") == "local":
            backend += ", local connection: every demo server is this machine"
        cli = _shown(bin_dir / "omserver")
        setup_log = Path(settings.BASE_DIR) / "var" / "log" / "setup.log"
        log_files = ", ".join(_shown(path) for path in logs.values())
        if setup_log.exists():
            log_files += f" (set-up: {_shown(setup_log)})"
        rule = "-" * 72
        lines = [
            rule,
            "OMServer is running; Ctrl-C stops it.",
            f"  console   {url}",
            f"  log in    {login}",
            f"  daemon    {settings.DAEMON_ADDRESS} ({backend})",
            f"  logs      {log_files}",
            f"  CLI       {cli} ping",
            f"            {cli} run 1003 --hosts www-01",
            rule,
        ]
        self.stdout.write(self.style.SUCCESS("\n".join(lines)))
        self.stdout.flush()  # now, even into a pipe or a file

    @staticmethod
    def _wait_for_daemon(
        process: subprocess.Popen, key: str, log: Path, seconds: float = 120
    ) -> None:
        with Client(settings.DAEMON_ADDRESS, WEB_CLIENT, key, timeout=2) as client:
            deadline = time.monotonic() + seconds
            while process.poll() is None and time.monotonic() < deadline:
                try:
                    client.ping()
                    return
                except DaemonError:
                    time.sleep(0.3)
        raise CommandError(
            f"the daemon did not answer at {settings.DAEMON_ADDRESS}: see {_shown(log)}\n"
            + _tail(log)
        )

    def _web_key(self) -> str:
        """The web console's key: created once, kept in the data folder (0600)."""
        if settings.DAEMON_CLIENT_KEY:
            return settings.DAEMON_CLIENT_KEY
        return self._client_key(WEB_CLIENT, Path(settings.DATA_DIR) / "web-client.key", WEB)

    @staticmethod
    def _client_key(name: str, path: Path, scope: Scope) -> str:
        """Client ``name``'s key: issued once, kept in ``path`` (0600), with ``scope``
        (given again to a key kept from a run before keys had scopes)."""
        store = KeyStore(key_file(settings.CONFIG))
        if path.exists() and store.cipher_for(name) is not None:
            store.set_scope(name, scope)
            return path.read_text().strip()
        if any(c.name == name and not c.revoked for c in store.clients()):
            store.revoke(name)  # its key file is gone: issue a new one
        key = store.add(name, scope)
        write_private(path, key + "\n")
        return key


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a child with its output appended to ``log``."""
    with log.open("a") as output:
        output.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} make run starts {argv[0]}\n")
        output.flush()
        return subprocess.Popen(  # noqa: S603 (our own argv; host and port are options)
            argv, env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )


def _wait_for_web(url: str, process: subprocess.Popen, log: Path, seconds: float = 120) -> None:
    """Until the login page answers: only then is the URL worth printing."""
    login = url.replace("://0.0.0.0:", "://127.0.0.1:") + "accounts/login/"
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(login, timeout=2):  # noqa: S310 (our own http URL)
                return
        except urllib.error.HTTPError:
            return  # it answers (a host name not in web.allowed_hosts gets a 400)
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise CommandError(f"uWSGI did not serve {login}: see {_shown(log)}\n" + _tail(log))


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return "".join(f"  | {line}\n" for line in text)


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt
