"""`make run` on a first start: set-up, demo data, daemon and console; module 1003 runs."""

from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from omserver.config import BASE_DIR


class Browser:
    """Just enough of a browser: cookies, the login form, JSON calls with the CSRF token."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.cookies))

    def get(self, path: str) -> bytes:
        with self.opener.open(self.base + path, timeout=120) as response:
            return response.read()

    def post(self, path: str, data: bytes, content_type: str) -> bytes:
        csrf = next(c.value for c in self.cookies if c.name == "csrftoken")
        request = urllib.request.Request(
            self.base + path,
            data=data,
            headers={"Content-Type": content_type, "X-CSRFToken": csrf},
        )
        with self.opener.open(request, timeout=120) as response:
            return response.read()

    def log_in(self, username: str, password: str) -> None:
        form = self.get("/accounts/login/").decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        body = urllib.parse.urlencode(
            {"username": username, "password": password, "csrfmiddlewaretoken": token}
        )
        self.post("/accounts/login/", body.encode(), "application/x-www-form-urlencoded")

    def api(self, path: str, body: dict | None = None) -> dict:
        if body is None:
            return json.loads(self.get(path))
        return json.loads(self.post(path, json.dumps(body).encode(), "application/json"))


def wait_for(url: str, process: subprocess.Popen[str], seconds: float = 300) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.read()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_make_run_serves_the_console_and_runs_module_1003(tmp_path: Path, free_port: int) -> None:
    data_dir = tmp_path / "var"
    env = {
        **os.environ,
        "OMSERVER_PATHS_DATA_DIR": str(data_dir),
        "OMSERVER_DATABASE_URL": "",
        "OMSERVER_DAEMON_ADDRESS": f"127.0.0.1:{free_port + 1}",
    }
    for name in ("OMSERVER_CONFIG", "OMSERVER_DAEMON_CLIENT_KEY", "OMSERVER_DAEMON_BACKEND"):
        env.pop(name, None)
    process = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={free_port}"],
        cwd=BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{free_port}"
        login = wait_for(f"{base}/accounts/login/", process).decode()
        assert 'name="password"' in login
        assert b"body" in wait_for(f"{base}/static/console/console.css", process)
        browser = Browser(base)
        browser.log_in("admin", (data_dir / "admin-password").read_text().strip())
        assert b'id="module-picker"' in browser.get("/")
        job = browser.api("/api/jobs/", {"module": 1003, "servers": ["www-01", "www-02"]})
        deadline = time.monotonic() + 120
        while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
            time.sleep(0.3)
            job = browser.api(f"/api/jobs/{job['id']}/")
        steps = browser.api(f"/api/jobs/{job['id']}/results/")["steps"]
        # The CLI finds make run's key for it in the data folder: nothing to export.
        cli = subprocess.run(
            [str(Path(sys.executable).parent / "omserver"), "run", "1003", "--hosts", "www-01"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=60)
    assert job["status"] == "succeeded", (job, output)
    first_line = Path("/etc/issue").read_text().splitlines()[0]
    assert [s["stdout"].strip() for s in steps] == [first_line, first_line]
    assert "Loaded the demo data" in output
    assert "Admin account: admin / " in output
    # For a person: the closing block, and no uWSGI banner or daemon log burying it.
    password = (data_dir / "admin-password").read_text().strip()
    assert f"console   http://127.0.0.1:{free_port}/" in output
    assert f"log in    admin / {password}" in output
    assert f"daemon    127.0.0.1:{free_port + 1}" in output
    assert str(data_dir / "log" / "daemon.log") in output
    assert "Starting uWSGI" not in output
    assert "Starting uWSGI" in (data_dir / "log" / "uwsgi.log").read_text()
    assert "daemon listening" in (data_dir / "log" / "daemon.log").read_text()
    # The local CLI's own key (client "cli"), private to its owner.
    assert (data_dir / "cli-client.key").stat().st_mode & 0o777 == 0o600
    assert cli.returncode == 0, cli.stdout + cli.stderr
    assert f"www-01#1 | {first_line}" in cli.stdout
