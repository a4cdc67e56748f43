"""The shipped deploy/uwsgi.ini and deploy/nginx/omserver.conf, run for real on loopback.

Only ports and paths differ from the shipped files: uWSGI's through its
OMSERVER_UWSGI_* variables, nginx's by replacing each shipped port or path
exactly once (``site_config``), so what is tested is what a sysadmin installs.
"""

from __future__ import annotations

import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from omserver.config import BASE_DIR
from omserver.protocol.wire import new_key
from tests.lab.procs import free_port, spawn, stop, wait_for
from tests.security_headers import problems

DEPLOY = BASE_DIR / "deploy"
NGINX = Path("/usr/sbin/nginx")
UWSGI = Path(sys.executable).parent / "uwsgi"
SERVER_NAME = "omserver.example.com"  # the shipped server_name, kept

pytestmark = pytest.mark.skipif(not NGINX.exists(), reason="needs nginx (apt-get install nginx)")


# -- configuration as a sysadmin would have it, on loopback ports and temporary paths -----


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for the server name and 127.0.0.1, so clients can verify it."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(SERVER_NAME), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "fullchain.pem", folder / "privkey.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def replace_once(text: str, old: str, new: str) -> str:
    """Fails when the shipped file no longer has ``old`` exactly once."""
    assert text.count(old) == 1, f"{old!r} appears {text.count(old)} times in the shipped site"
    return text.replace(old, new)


@dataclass
class Ports:
    http: int
    https: int
    uwsgi: int


def site_config(folder: Path, ports: Ports, static_root: Path) -> Path:
    """The shipped site with this run's ports and paths, and nothing else changed."""
    cert, key = self_signed_certificate(folder)
    text = (DEPLOY / "nginx" / "omserver.conf").read_text()
    for old, new in [
        ("listen 80;", f"listen 127.0.0.1:{ports.http};"),
        ("listen [::]:80;", f"listen [::1]:{ports.http};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{ports.https} ssl"),
        ("listen [::]:443 ssl", f"listen [::1]:{ports.https} ssl"),
        ("server 127.0.0.1:9001;", f"server 127.0.0.1:{ports.uwsgi};"),
        ("alias /var/lib/omserver/static/;", f"alias {static_root}/;"),
        ("/etc/ssl/omserver/fullchain.pem", str(cert)),
        ("/etc/ssl/omserver/privkey.pem", str(key)),
        ("/var/log/nginx/omserver.access.log", str(folder / "omserver.access.log")),
        ("/var/log/nginx/omserver.error.log", str(folder / "omserver.error.log")),
    ]:
        text = replace_once(text, old, new)
    site = folder / "omserver.conf"
    site.write_text(text)
    return site


def nginx_config(folder: Path, site: Path) -> Path:
    """A minimal nginx.conf around the site: what Debian's and RHEL's http {} give it."""
    for name in ("mime.types", "uwsgi_params"):
        shutil.copy(Path("/etc/nginx") / name, folder / name)
    temp = "".join(
        f"    {kind}_temp_path {folder / kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # Workers must read the 0700 temporary folders the test runs in.
    user = "user root;\n" if os.geteuid() == 0 else ""
    config = folder / "nginx.conf"
    config.write_text(
        f"{user}worker_processes 1;\n"
        "events { worker_connections 256; }\n"
        "http {\n"
        "    include mime.types;\n"
        "    default_type application/octet-stream;\n"
        f"    access_log {folder / 'access.log'};\n"
        f"{temp}"
        f"    include {site};\n"
        "}\n"
    )
    return config


def nginx_argv(folder: Path, config: Path, *extra: str) -> list[str]:
    globals_ = f"daemon off; pid {folder / 'nginx.pid'}; error_log {folder / 'error.log'};"
    return [str(NGINX), "-p", str(folder), "-c", str(config), "-g", globals_, *extra]


def uwsgi_environ(folder: Path, ports: Ports, database_url: str, daemon: dict[str, str]) -> dict:
    environ = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("OMSERVER_", "UWSGI_")) and k != "DJANGO_ALLOW_ASYNC_UNSAFE"
    }
    return {
        **environ,
        "OMSERVER_UWSGI_CHDIR": str(BASE_DIR),
        "OMSERVER_UWSGI_VIRTUALENV": sys.prefix,
        "OMSERVER_UWSGI_SOCKET": f"127.0.0.1:{ports.uwsgi}",
        "OMSERVER_UWSGI_STATS": str(folder / "uwsgi-stats.sock"),
        "OMSERVER_UWSGI_LOGTO": str(folder / "web.log"),
        "OMSERVER_PATHS_DATA_DIR": str(folder / "var"),
        "OMSERVER_DATABASE_URL": database_url,
        "OMSERVER_WEB_ALLOWED_HOSTS": SERVER_NAME,
        "OMSERVER_WEB_HTTPS": "true",
        "OMSERVER_WEB_SECRET_KEY": new_key() + new_key(),
        **daemon,
    }


# -- the running stack --------------------------------------------------------------------


@dataclass
class Stack:
    folder: Path
    ports: Ports
    uwsgi: subprocess.Popen
    ca_file: Path

    def https(self, method: str, path: str, **kwargs) -> http.client.HTTPResponse:
        context = ssl.create_default_context(cafile=self.ca_file)
        conn = http.client.HTTPSConnection("127.0.0.1", self.ports.https, context=context)
        return self._request(conn, method, path, **kwargs)

    def http(self, method: str, path: str) -> http.client.HTTPResponse:
        return self._request(http.client.HTTPConnection("127.0.0.1", self.ports.http), method, path)

    @staticmethod
    def _request(
        conn: http.client.HTTPConnection,
        method: str,
        path: str,
        body: dict | None = None,
        headers: dict[str, str] | None = None,
    ) -> http.client.HTTPResponse:
        sent = {"Host": SERVER_NAME, **(headers or {})}
        data = None
        if body is not None:
            data, sent["Content-Type"] = json.dumps(body), "application/json"
        conn.timeout = 30
        conn.request(method, path, body=data, headers=sent)
        response = conn.getresponse()
        response.body = response.read()  # read now: the connection closes with this call
        conn.close()
        return response

    def stats(self) -> dict:
        """uWSGI's stats socket: a JSON document, then it closes."""
        with socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(self.folder / "uwsgi-stats.sock"))
            return json.loads(b"".join(iter(lambda: sock.recv(65536), b"")))

    def log(self) -> str:
        return (self.folder / "web.log").read_text(errors="replace")


def _answers(stack: Stack) -> bool:
    try:
        return stack.https("GET", "/healthz").status in (200, 503)
    except OSError:
        return False


@contextmanager
def running_stack(folder: Path, database_url: str, daemon: dict[str, str]) -> Iterator[Stack]:
    """collectstatic, then uWSGI with the shipped ini and nginx with the shipped site."""
    ports = Ports(free_port(), free_port(), free_port())
    environ = uwsgi_environ(folder, ports, database_url, daemon)
    subprocess.run(
        [sys.executable, str(BASE_DIR / "manage.py"), "collectstatic", "--noinput", "-v0"],
        env=environ,
        check=True,
        timeout=120,
    )
    site = site_config(folder, ports, folder / "var" / "static")
    config = nginx_config(folder, site)
    with ExitStack() as running:
        uwsgi = spawn(
            [str(UWSGI), "--ini", str(DEPLOY / "uwsgi.ini")], folder / "uwsgi.out", environ
        )
        running.callback(stop, uwsgi, 70)
        nginx = spawn(nginx_argv(folder, config), folder / "nginx.out")
        running.callback(stop, nginx, 5)
        stack = Stack(folder, ports, uwsgi, folder / "fullchain.pem")
        try:
            wait_for(lambda: uwsgi.poll() is not None or _answers(stack), 60, "uWSGI behind nginx")
        except TimeoutError:
            pytest.fail(f"the stack did not answer:\n{stack.log()}\n{(folder / 'error.log')}")
        assert uwsgi.poll() is None, f"uWSGI exited:\n{stack.log()}"
        yield stack


@pytest.fixture(scope="module")
def stack(tmp_path_factory, test_database_url) -> Iterator[Stack]:
    """The web with no daemon running: pages and static files need none."""
    daemon = {"OMSERVER_DAEMON_ADDRESS": f"127.0.0.1:{free_port()}"}
    with running_stack(tmp_path_factory.mktemp("stack"), test_database_url, daemon) as running:
        yield running


# -- what a browser and a load balancer get ------------------------------------------------

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def assert_security_headers(response: http.client.HTTPResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_all(name) == [value], name
    assert response.headers["Server"] == "nginx"  # no version


def test_the_login_page_comes_through_nginx(stack) -> None:
    response = stack.https("GET", "/accounts/login/")
    assert response.status == 200
    assert b'name="password"' in response.body
    assert_security_headers(response)
    assert "Secure" in response.headers["Set-Cookie"]  # Django knows it is behind HTTPS
    # Django's policy and no-store come through nginx, once each
    assert problems("/accounts/login/", response.headers, response.body.decode()) == []
    assert len(response.headers.get_all("Content-Security-Policy")) == 1


def test_static_files_come_from_static_root_gzipped(stack) -> None:
    shipped = (BASE_DIR / "omserverweb/console/static/console/console.css").read_bytes()
    plain = stack.https("GET", "/static/console/console.css")
    assert plain.status == 200
    assert plain.body == shipped
    assert plain.headers["Content-Type"] == "text/css"
    assert_security_headers(plain)
    gzipped = stack.https("GET", "/static/console/console.css", headers={"Accept-Encoding": "gzip"})
    assert gzipped.headers["Content-Encoding"] == "gzip"


def test_the_health_endpoint_comes_through_nginx(stack) -> None:
    response = stack.https("GET", "/healthz")
    assert response.status == 200
    assert json.loads(response.body) == {
        "status": "degraded",
        "database": "ok",
        "daemon": "unreachable",
        "zones": {"default": "unreachable"},
    }


def test_http_redirects_to_https_except_the_health_probe(stack) -> None:
    response = stack.http("GET", "/accounts/login/?next=/jobs/")
    assert response.status == 301
    assert response.headers["Location"] == f"https://{SERVER_NAME}/accounts/login/?next=/jobs/"
    assert stack.http("GET", "/healthz").status == 200


def test_uwsgi_runs_what_the_ini_says(stack) -> None:
    stats = stack.stats()
    assert len(stats["workers"]) == 8
    assert {len(worker["cores"]) for worker in stats["workers"]} == {4}
    assert stats["listen_queue"] == 0


# -- a reload while a job runs -------------------------------------------------------------


@pytest.fixture(scope="module")
def salt_stack(salt_lab, tmp_path_factory, test_database_url) -> Iterator[tuple[Stack, Path]]:
    """The stack talking to a real daemon on the Salt lab, with the test sleep module."""
    from tests.daemon_process import running_daemon

    root = tmp_path_factory.mktemp("salt-stack")
    modules = root / "modules"
    shutil.copytree(BASE_DIR / "modules", modules)
    shutil.copytree(Path(__file__).parent / "engine_modules", modules, dirs_exist_ok=True)
    env = {**salt_lab.settings(), "OMSERVER_DAEMON_MODULES_DIR": str(modules)}
    with running_daemon(root / "daemon", env, database_url=test_database_url) as daemon:
        web = {
            "OMSERVER_DAEMON_ADDRESS": daemon.address,
            "OMSERVER_DAEMON_CLIENT_KEY": daemon.issued["web"],
        }
        with running_stack(root / "web", test_database_url, web) as running:
            yield running, modules


def worker_pids(stack: Stack) -> set[int]:
    return {worker["pid"] for worker in stack.stats()["workers"]}


@pytest.mark.salt
def test_a_uwsgi_reload_loses_no_job(salt_stack, alice, transactional_db) -> None:
    """The daemon runs jobs, not uWSGI workers: a reload mid-job changes nothing for it."""
    from omserverweb.apitokens.services import issue
    from omserverweb.jobs.models import Job
    from tests.conftest import WWW_HOSTS

    stack, _ = salt_stack
    token = {"Authorization": f"Token {issue(alice, 'tests')[1]}"}
    started = stack.https(
        "POST",
        "/api/jobs/",
        body={"module": 9101, "servers": list(WWW_HOSTS), "params": {"seconds": 4}},
        headers=token,
    )
    assert started.status == 201, started.body
    job_id = json.loads(started.body)["id"]
    before = worker_pids(stack)

    os.kill(stack.uwsgi.pid, signal.SIGHUP)  # systemctl reload omserver-web
    assert Job.objects.get(pk=job_id).status in {"queued", "running"}
    wait_for(lambda: _answers(stack) and worker_pids(stack).isdisjoint(before), 60, "the reload")

    def ended() -> bool:
        return Job.objects.get(pk=job_id).status not in {"queued", "running"}

    wait_for(ended, 60, f"job {job_id}")
    job = json.loads(stack.https("GET", f"/api/jobs/{job_id}/", headers=token).body)
    assert job["status"] == "succeeded"
    assert sorted(r["host"] for r in job["results"]) == sorted(WWW_HOSTS)
    assert "gracefully" in stack.log()
