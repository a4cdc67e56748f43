"""Daemon client keys are held to their scopes: modules, inventory hosts, on-behalf, jobs.

A real daemon (Ansible's local connection: every inventory server is this machine)
records into the test database, whose inventory the scopes select hosts from.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from omserver.client import Client, NotPermitted
from omserver.protocol.scope import WEB, Scope, ScopeError, parse_hosts, parse_modules
from omserverweb.access.models import KeyRefusal
from omserverweb.jobs.models import Job
from tests.conftest import WWW_HOSTS
from tests.daemon_process import RunningDaemon, running_daemon

pytestmark = pytest.mark.usefixtures("transactional_db", "inventory")

LOCAL = {"OMSERVER_DAEMON_BACKEND": "ansible", "OMSERVER_ANSIBLE_CONNECTION": "local"}
WWW_ONLY = Scope(modules=frozenset({1003}), hosts=("app:www.example.com",))
NOT_IN_INVENTORY = {"hostname": "x", "lan_ip": "127.0.0.2"}
WAIT = 180.0  # seconds a job may take on a busy machine


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory, test_database_url: str) -> RunningDaemon:
    with running_daemon(
        tmp_path_factory.mktemp("scoped"), LOCAL, database_url=test_database_url
    ) as running:
        running.add_client("www-tool", WWW_ONLY)
        running.add_client("peer", WWW_ONLY)
        yield running


@pytest.fixture
def tool(daemon: RunningDaemon) -> Iterator[Client]:
    with daemon.client("www-tool") as client:
        yield client


@pytest.fixture
def web(daemon: RunningDaemon) -> Iterator[Client]:
    with daemon.client("web") as client:
        yield client


def refusals() -> list[tuple[str, str, str]]:
    return list(KeyRefusal.objects.order_by("pk").values_list("client", "operation", "reason"))


# -- inside its scope ----------------------------------------------------------------------


def test_a_scoped_key_runs_its_module_on_its_hosts_for_itself(tool) -> None:
    by_name = tool.run(1003, [WWW_HOSTS[0]], timeout=WAIT)
    as_listed = tool.run(1003, [{"hostname": WWW_HOSTS[1], "lan_ip": "127.0.2.2"}], timeout=WAIT)
    for state in (by_name, as_listed):
        assert state["status"] == "succeeded", state
        assert tool.job(state["id"])["id"] == tool.wait(state["id"], 1)["id"] == state["id"]
    assert tool.submit(1003, [WWW_HOSTS[0]], requested_by="www-tool") > 0  # its own name
    job = Job.objects.get(pk=by_name["id"])
    assert (job.client, job.requested_by) == ("www-tool", "www-tool")
    assert refusals() == []


def test_the_webs_key_acts_for_users_on_any_inventory_host_and_any_job(web, tool) -> None:
    mine = tool.submit(1003, [WWW_HOSTS[0]])
    job_id = web.submit(1001, ["bbs-01"], {"lines": 5}, requested_by="alice")
    assert Job.objects.get(pk=job_id).requested_by == "alice"
    assert web.wait(mine, WAIT)["id"] == mine
    assert web.job(mine)["id"] == mine
    assert web.cancel(mine)["id"] == mine


# -- outside it: refused, logged, recorded -------------------------------------------------


def test_a_module_outside_the_scope_is_refused_and_recorded(daemon, tool) -> None:
    with pytest.raises(NotPermitted) as refused:
        tool.submit(1001, [WWW_HOSTS[0]], {"lines": 5})
    assert refused.value.code == "not_permitted"
    assert (
        str(refused.value) == "submit: not permitted for this key: module 1001 is outside its scope"
    )
    assert refused.value.field == "module"
    assert not Job.objects.filter(client="www-tool").exists()
    assert refusals() == [("www-tool", "submit", "module 1001 is outside its scope")]
    assert "refused submit from client www-tool: not permitted: module 1001" in daemon.log()


@pytest.mark.parametrize(
    "target",
    [
        pytest.param("bbs-01", id="an inventory host of another application"),
        pytest.param(NOT_IN_INVENTORY, id="a target not in the inventory"),
        pytest.param("nope-99", id="a name the inventory does not hold"),
        pytest.param({"hostname": WWW_HOSTS[0], "lan_ip": "127.0.0.2"}, id="a www name elsewhere"),
    ],
)
def test_a_host_outside_the_scope_gets_the_same_refusal_whether_or_not_it_exists(
    tool, target
) -> None:
    name = target if isinstance(target, str) else target["hostname"]
    with pytest.raises(NotPermitted) as refused:
        tool.run(1003, [WWW_HOSTS[1], target], timeout=WAIT)
    assert (
        str(refused.value) == f"run: not permitted for this key: host(s) outside its scope: {name}"
    )
    assert refused.value.field == "targets"
    assert not Job.objects.exists()
    assert refusals() == [("www-tool", "run", f"host(s) outside its scope: {name}")]


def test_even_the_webs_key_cannot_run_on_a_target_outside_the_inventory(web) -> None:
    with pytest.raises(NotPermitted, match=r"outside its scope: x$"):
        web.submit(1003, [NOT_IN_INVENTORY], requested_by="alice")
    assert not Job.objects.exists()
    assert refusals() == [("web", "submit", "host(s) outside its scope: x")]


def test_a_key_may_not_act_on_behalf_of_another_user(tool) -> None:
    with pytest.raises(NotPermitted, match="may not act on behalf of another user") as refused:
        tool.submit(1003, [WWW_HOSTS[0]], requested_by="admin")
    assert refused.value.field == "requested_by"
    assert not Job.objects.filter(requested_by="admin").exists()
    assert refusals() == [
        ("www-tool", "submit", "it may not act on behalf of another user ('admin')")
    ]


def test_a_key_may_not_read_wait_on_cancel_or_claim_another_clients_job(daemon, tool) -> None:
    with daemon.client("peer") as peer:
        theirs = peer.submit(1003, [WWW_HOSTS[0]])
        for ask in (
            lambda: tool.job(theirs),
            lambda: tool.wait(theirs, 1),
            lambda: tool.cancel(theirs),
            lambda: tool.submit(1003, [WWW_HOSTS[0]], job=theirs),
        ):
            with pytest.raises(NotPermitted, match=f"job {theirs} is another client's"):
                ask()
        assert peer.wait(theirs, WAIT)["status"] == "succeeded"  # never cancelled
    reason = f"job {theirs} is another client's"
    assert refusals() == [("www-tool", op, reason) for op in ("job", "wait", "cancel", "submit")]


def test_a_key_without_a_scope_may_ping_and_nothing_else(daemon) -> None:
    """A key file entry written before scopes: the narrow scope, never the old full trust."""
    daemon.add_client("old-tool")
    entries = json.loads(daemon.keys.path.read_text())
    del entries["clients"]["old-tool"]["scope"]
    daemon.keys.path.write_text(json.dumps(entries))
    with daemon.client("old-tool") as old:
        assert old.ping()["version"]
        with pytest.raises(NotPermitted, match="has no scope yet: `omserver keys scope NAME"):
            old.submit(1003, [WWW_HOSTS[0]])
    assert "without a scope, allowed nothing but ping" in daemon.log()


def test_a_rescoped_key_counts_from_its_next_request(daemon) -> None:
    daemon.add_client("grower", Scope(modules=frozenset({1003}), hosts=("zone:default",)))
    with daemon.client("grower") as grower:
        with pytest.raises(NotPermitted):
            grower.submit(1003, [WWW_HOSTS[0]], requested_by="alice")
        daemon.keys.set_scope("grower", WEB)
        assert grower.submit(1003, [WWW_HOSTS[0]], requested_by="alice") > 0


# -- the CLI ---------------------------------------------------------------------------------


def omserver(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMSERVER_PATHS_DATA_DIR": str(data_dir)}
    env.pop("OMSERVER_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "omserver", *args], env=env, capture_output=True, text=True
    )


def test_the_cli_adds_scoped_keys_changes_and_lists_their_scopes(daemon) -> None:
    added = omserver(
        daemon.data_dir, "keys", "add", "cli-made", "--modules", "1003", "--hosts", "lab-minion-*"
    )
    assert added.returncode == 0, added.stderr
    key = added.stdout.splitlines()[1].split("=", 1)[1]
    with Client(daemon.address, "cli-made", key, timeout=10) as made:
        assert made.submit(1003, [WWW_HOSTS[1]]) > 0
        with pytest.raises(NotPermitted):
            made.submit(1003, ["bbs-01"])
        changed = omserver(daemon.data_dir, "keys", "scope", "cli-made", "--hosts", "*")
        assert changed.returncode == 0, changed.stderr
        assert made.submit(1003, ["bbs-01"]) > 0
    assert omserver(daemon.data_dir, "keys", "add", "narrow").returncode == 0
    assert omserver(daemon.data_dir, "keys", "add", "webish", "--web").returncode == 0
    rows = {
        line.split()[0]: line
        for line in omserver(daemon.data_dir, "keys", "list").stdout.splitlines()
    }
    assert rows["cli-made"].endswith("modules=1003 hosts=*")
    assert rows["narrow"].endswith("modules=- hosts=-")
    assert rows["webish"].endswith("modules=* hosts=* on-behalf all-jobs")
    listed = json.loads(omserver(daemon.data_dir, "keys", "list", "--json").stdout)
    assert {r["name"]: r["scope"] for r in listed}["narrow"] == {
        "modules": [],
        "hosts": [],
        "on_behalf": False,
        "all_jobs": False,
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--web", "--all-jobs"], "--web is the web console's whole scope"),
        (["--modules", "10x3"], "'10x3' is not a module id"),
        (["--hosts", "rack:7"], "a selector is *, unlisted, name:, app: or zone:"),
    ],
)
def test_the_cli_refuses_a_scope_it_cannot_understand(tmp_path, args, message) -> None:
    done = omserver(tmp_path, "keys", "add", "tool", *args)
    assert done.returncode == 2
    assert message in done.stderr
    assert not (tmp_path / "clients.json").exists()


def test_host_selectors_and_module_lists_parse_strictly() -> None:
    assert parse_modules("*") is None
    assert parse_modules("1003, 1001") == frozenset({1001, 1003})
    assert parse_hosts("*,app:Linux.Web/www.*, zone:dc2,www-0?") == (
        "*",
        "app:Linux.Web/www.*",
        "zone:dc2",
        "www-0?",
    )
    for bad in ("*,1003", "0", "-1"):
        with pytest.raises(ScopeError):
            parse_modules(bad)
    with pytest.raises(ScopeError):
        Scope.from_json({"modules": ["*"], "hosts": "*", "on_behalf": True, "all_jobs": True})
    assert Scope.from_json(WEB.to_json()) == WEB
