"""`make run` on a first start: sets up, loads the demo, serves the console under uWSGI."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from omserver.config import BASE_DIR


def wait_for(url: str, process: subprocess.Popen[str], seconds: float = 90) -> bytes:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited early:\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.read()
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {seconds} s")


def test_make_run_serves_the_login_page(tmp_path: Path, free_port: int) -> None:
    env = {
        **os.environ,
        "OMSERVER_PATHS_DATA_DIR": str(tmp_path / "var"),
        "OMSERVER_DATABASE_URL": "",
    }
    env.pop("OMSERVER_CONFIG", None)
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
        login = wait_for(f"{base}/admin/login/", process).decode()
        assert 'name="password"' in login
        assert b"body" in wait_for(f"{base}/static/admin/css/base.css", process)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    assert "Loaded the demo data" in output
    assert "Admin account: admin / " in output
    assert (tmp_path / "var" / "admin-password").exists()
