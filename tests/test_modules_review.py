"""Modules go live by decision: a new Mid_ file is recorded new and disabled, and runs
through no path (rpyc, CLI, REST and so the console) until an operator with
``modules.enable_moduledefinition`` enables it; a file whose parameter schema changes
is flagged and disabled until enabled again.

A real daemon (Ansible, local connection: every target is this machine) records into
the test database; the tests drop files into its modules folder as an author would.

olga: may enable modules (and nothing else). bob: runs 1001 and 1003, may edit modules.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from omserver.client import UnknownModule
from omserver.config import BASE_DIR
from omserverweb.jobs.models import Job
from omserverweb.modules.models import ModuleDefinition
from tests.conftest import WWW_HOSTS, logged_in
from tests.daemon_process import RunningDaemon, running_daemon
from tests.records import stdout_of

pytestmark = pytest.mark.usefixtures("transactional_db")

REFUSED = "unknown or not permitted module"
ECHO = """NAME = "echo"
CAPTION = "Say a word."
PARAMS = {params}


def run(ctx, params):
    ctx.cmd(["echo", {said}])
"""
WORD = [{"name": "word", "type": "str", "default": "hello", "max_length": 20}]
WORDS = [*WORD, {"name": "again", "type": "bool", "default": False}]


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, test_database_url: str) -> RunningDaemon:
    root = tmp_path_factory.mktemp("review")
    modules = root / "modules"
    shutil.copytree(BASE_DIR / "modules", modules)
    env = {
        "OMSERVER_DAEMON_MODULES_DIR": str(modules),
        "OMSERVER_DAEMON_BACKEND": "ansible",
        "OMSERVER_ANSIBLE_CONNECTION": "local",
    }
    with running_daemon(root / "var", env, database_url=test_database_url) as running:
        yield running


@pytest.fixture
def web(daemon: RunningDaemon, settings) -> RunningDaemon:
    settings.DAEMON_ADDRESS = daemon.address
    settings.DAEMON_CLIENT_ID = "web"
    settings.DAEMON_CLIENT_KEY = daemon.issued["web"]
    return daemon


@pytest.fixture
def olga(inventory) -> User:
    user = User.objects.create_user("olga", password="olga-password-1")
    user.user_permissions.add(Permission.objects.get(codename="enable_moduledefinition"))
    return User.objects.get(pk=user.pk)


def drop(daemon: RunningDaemon, module_id: int, params: list, said: str = 'params["word"]') -> str:
    """Write ``Mid_<id>.py`` into the daemon's modules folder; its SHA-256."""
    text = ECHO.format(params=repr(params), said=said)
    (daemon.data_dir.parent / "modules" / "common" / f"Mid_{module_id}.py").write_text(text)
    return hashlib.sha256(text.encode()).hexdigest()


def modules_page(user: User) -> str:
    """The Modules page, which asks the daemon (so it has reported what it found)."""
    page = logged_in(user).get("/modules/")
    assert page.status_code == 200
    return page.content.decode()


def row_of(page: str, module_id: int) -> str:
    start = page.index(f'<tr id="module-{module_id}">')
    return page[start : page.index("</tr>", start)]


def targets() -> list[dict]:
    return [{"hostname": host} for host in WWW_HOSTS]  # completed from the inventory


def api_as(user: User) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def cli_run(daemon: RunningDaemon, module_id: int, tmp_path: Path) -> subprocess.CompletedProcess:
    key_file = tmp_path / "ops.key"
    key_file.write_text(daemon.issued.get("ops") or daemon.add_client("ops"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OMSERVER_DAEMON")}
    env["OMSERVER_PATHS_DATA_DIR"] = str(tmp_path / "cli")
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "omserver",
            "run",
            str(module_id),
            "--hosts",
            WWW_HOSTS[0],
            "--address",
            daemon.address,
            "--client-id",
            "ops",
            "--key-file",
            str(key_file),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def enable(user: User, module_id: int, file_hash: str) -> None:
    done = logged_in(user).post(f"/modules/{module_id}/enable/", {"file_hash": file_hash})
    assert done.status_code == 302


def test_a_new_file_shows_up_new_and_disabled_with_its_schema_and_hash(web, alice) -> None:
    sha256 = drop(web, 8001, WORD)
    row = row_of(modules_page(alice), 8001)
    assert "new, disabled" in row
    assert sha256[:12] in row and sha256 in row
    assert "&quot;word&quot;" in row  # the schema to review
    module = ModuleDefinition.objects.get(pk=8001)
    assert (module.enabled, module.file_hash, module.file_schema) == (False, sha256, WORD)
    assert (module.name, module.review_status) == ("echo", "new")


def test_a_new_module_runs_through_no_path_until_an_operator_enables_it(
    web, alice, olga, tmp_path
) -> None:
    sha256 = drop(web, 8002, WORD)
    with web.client("ops") as client:
        with pytest.raises(UnknownModule) as new:
            client.submit(8002, targets(), {"word": "hi"})
        with pytest.raises(UnknownModule) as unknown:
            client.submit(4242, targets())
    assert str(new.value).replace("8002", "N") == str(unknown.value).replace("4242", "N")
    assert REFUSED in str(new.value)
    refused = cli_run(web, 8002, tmp_path)
    assert refused.returncode != 0 and f"{REFUSED} 8002" in refused.stderr
    body = {"module": 8002, "servers": list(WWW_HOSTS), "params": {"word": "hi"}}
    assert api_as(alice).post("/api/jobs/", body, format="json").status_code == 400
    assert 8002 not in [m["id"] for m in _console_modules(alice)]
    assert not Job.objects.filter(module_id=8002).exists()

    enable(olga, 8002, sha256)
    module = ModuleDefinition.objects.get(pk=8002)
    assert (module.enabled, module.enabled_by, module.enabled_hash) == (True, "olga", sha256)
    assert 8002 in [m["id"] for m in _console_modules(alice)]
    with web.client("ops") as client:
        state = client.run(8002, targets(), {"word": "hi"}, timeout=120)
    assert state["status"] == "succeeded", state
    assert stdout_of(state, WWW_HOSTS[0]).strip() == "hi"
    assert cli_run(web, 8002, tmp_path).returncode == 0
    started = api_as(alice).post("/api/jobs/", body, format="json")
    assert started.status_code == 201, started.data
    with web.client("ops") as client:
        assert client.wait(started.data["id"], 120)["status"] == "succeeded"


def _console_modules(user: User) -> list[dict]:
    html = logged_in(user).get("/").content.decode()
    start = html.index('<script id="console-data" type="application/json">') + 50
    return json.loads(html[start : html.index("</script>", start)])["modules"]


def test_only_the_enable_permission_enables(web, alice, bob) -> None:
    sha256 = drop(web, 8003, WORD)
    modules_page(alice)
    bob.user_permissions.add(Permission.objects.get(codename="change_moduledefinition"))
    bob = User.objects.get(pk=bob.pk)
    refused = logged_in(bob).post("/modules/8003/enable/", {"file_hash": sha256})
    assert refused.status_code == 403
    assert "Enable" not in row_of(modules_page(bob), 8003)  # no button either
    patched = api_as(bob).patch("/api/modules/8003/", {"enabled": True}, format="json")
    assert patched.status_code == 200 and patched.data["enabled"] is False
    edited = logged_in(bob).post(
        "/modules/8003/edit/",
        {"name": "echo", "backends": ["ansible"], "params_schema": "[]", "enabled": "on"},
    )
    assert edited.status_code == 302
    module = ModuleDefinition.objects.get(pk=8003)
    assert (module.enabled, module.params_schema) == (False, WORD)
    with web.client("ops") as client, pytest.raises(UnknownModule):
        client.submit(8003, targets())


def test_a_changed_schema_is_flagged_and_refused_until_enabled_again(web, olga) -> None:
    first = drop(web, 8004, WORD)
    modules_page(olga)
    enable(olga, 8004, first)
    with web.client("ops") as client:
        assert client.run(8004, targets(), timeout=120)["status"] == "succeeded"

    second = drop(web, 8004, WORDS)
    row = row_of(modules_page(olga), 8004)
    assert "schema changed" in row and second[:12] in row
    module = ModuleDefinition.objects.get(pk=8004)
    assert (module.enabled, module.schema_changed, module.file_schema) == (False, True, WORDS)
    assert module.params_schema == WORD  # what was enabled, until someone enables again
    with web.client("ops") as client, pytest.raises(UnknownModule):
        client.submit(8004, targets(), {"word": "hi", "again": True})

    enable(olga, 8004, first)  # what the page showed before: the file moved on since
    assert not ModuleDefinition.objects.get(pk=8004).enabled
    enable(olga, 8004, second)
    assert ModuleDefinition.objects.get(pk=8004).params_schema == WORDS
    with web.client("ops") as client:
        state = client.run(8004, targets(), {"word": "again", "again": True}, timeout=120)
    assert state["status"] == "succeeded", state

    third = drop(web, 8004, WORDS, said='params["word"].upper()')  # same schema: runs on
    row = row_of(modules_page(olga), 8004)
    assert "changed since enabled" in row and third[:12] in row
    with web.client("ops") as client:
        state = client.run(8004, targets(), {"word": "loud"}, timeout=120)
    assert stdout_of(state, WWW_HOSTS[0]).strip() == "LOUD"


def test_the_admin_enables_a_reported_file_only_for_the_permission(alice, bob) -> None:
    from omserverweb.modules.services import report_modules

    sha256 = "ab" * 32
    report = {"id": 8005, "sha256": sha256, "error": "", "name": "echo", "caption": ""}
    report_modules([{**report, "params": WORD, "backends": ["ansible"]}])
    bob.is_staff = True
    bob.save()
    for codename in ("view_moduledefinition", "change_moduledefinition"):
        bob.user_permissions.add(Permission.objects.get(codename=codename))
    action = {"action": "enable", "_selected_action": ["8005"]}
    logged_in(User.objects.get(pk=bob.pk)).post("/admin/modules/moduledefinition/", action)
    assert not ModuleDefinition.objects.get(pk=8005).enabled
    logged_in(alice).post("/admin/modules/moduledefinition/", action)
    module = ModuleDefinition.objects.get(pk=8005)
    assert (module.enabled, module.enabled_by, module.enabled_hash) == (True, "alice", sha256)
