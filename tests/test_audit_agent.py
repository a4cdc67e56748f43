"""The host agent end to end: a real bash session over SSH (sshd lab target) with the
profile snippet, the real shipper, uWSGI serving the ingest endpoint, events in the
test database; and an outage of the web server that loses nothing and doubles nothing."""

from __future__ import annotations

import configparser
import importlib.util
import os
import pwd
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.machinery import SourceFileLoader
from pathlib import Path

import pytest

from omserver.config import BASE_DIR
from omserverweb.audit import tokens
from omserverweb.audit.models import CommandEvent
from omserverweb.audit.services import verify_events
from omserverweb.inventory.models import Server
from tests.conftest import logged_in
from tests.lab.procs import port_open, spawn, stop, wait_for

pytestmark = pytest.mark.ssh

AGENT = BASE_DIR / "deploy" / "audit"
UWSGI = Path(sys.executable).with_name("uwsgi")


class Web:
    """uWSGI serving the project on the test database; stoppable for an outage."""

    def __init__(self, root: Path, port: int, database_url: str) -> None:
        self.root, self.port = root, port
        self.env = {
            **os.environ,
            "OMSERVER_DATABASE_URL": database_url,
            "OMSERVER_PATHS_DATA_DIR": str(root / "var"),
        }
        self.env.pop("OMSERVER_CONFIG", None)
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        argv = [str(UWSGI), "--http-socket", f"127.0.0.1:{self.port}", "--master"]
        argv += ["--processes", "1", "--module", "omserverweb.wsgi:application"]
        argv += ["--chdir", str(BASE_DIR), "--die-on-term", "--need-app", "--lazy-apps"]
        self.proc = spawn(argv, self.root / "uwsgi.log", env=self.env)
        wait_for(lambda: port_open("127.0.0.1", self.port), 120, "uWSGI")

    def stop(self) -> None:
        stop(self.proc)
        wait_for(lambda: not port_open("127.0.0.1", self.port), 120, "uWSGI stopped")


@dataclass
class Agent:
    spool: Path
    rc: Path
    shipper: subprocess.Popen


@pytest.fixture
def web(tmp_path, free_port, test_database_url, transactional_db) -> Iterator[Web]:
    server = Web(tmp_path, free_port, test_database_url)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def agent(tmp_path, web, inventory) -> Iterator[Agent]:
    """The snippet sourced by a test rc file (never /etc), the shipper as a process."""
    clear = tokens.issue("bbs-01", "alice", server=inventory.bbs_server)[1]
    spool = tmp_path / "spool"
    config = tmp_path / "agent.conf"
    config.write_text(
        "[shipper]\n"
        f"url = http://127.0.0.1:{web.port}/api/audit/events/\n"
        f"token = {clear}\nhost = bbs-01\nspool = {spool}\n"
        "poll = 0.2\nbackoff_max = 0.5\ntimeout = 2\n"
    )
    shipper = spawn(
        [sys.executable, str(AGENT / "omserver-audit-ship"), "--config", str(config), "run"],
        tmp_path / "shipper.log",
    )
    wait_for(lambda: (spool / "incoming").is_dir(), 120, "shipper spool")
    rc = tmp_path / "bashrc"
    rc.write_text(
        f"HISTFILE={tmp_path / 'history'}\n"
        f"export OMSERVER_AUDIT_SPOOL={spool}\n"
        f". {AGENT / 'omserver-audit.sh'}\n"
    )
    yield Agent(spool, rc, shipper)
    stop(shipper)


def ssh_session(lab, rc: Path, commands: list[str]) -> None:
    """Log into a lab target and type ``commands`` into an interactive bash there."""
    target = lab.targets[0]
    subprocess.run(
        [
            "ssh",
            "-T",
            "-i",
            str(lab.private_key),
            "-o",
            f"UserKnownHostsFile={lab.known_hosts}",
            "-o",
            "BatchMode=yes",
            "-p",
            str(target.ssh_port),
            f"root@{target.lan_ip}",
            f"bash --rcfile {rc} -i",
        ],
        input="".join(c + "\n" for c in commands),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )


def stored_commands() -> list[str]:
    return list(CommandEvent.objects.order_by("seq").values_list("command", flat=True))


COMMANDS = ["id -un", "cd /tmp", "echo 'quoted; $HOME' | wc -c", "echo 'quoted; $HOME' | wc -c"]


def test_a_bash_session_over_ssh_reaches_the_database(ssh_lab, agent) -> None:
    ssh_session(ssh_lab, agent.rc, COMMANDS)
    wait_for(lambda: len(stored_commands()) >= len(COMMANDS), 120, "events in the database")
    assert stored_commands() == COMMANDS
    events = list(CommandEvent.objects.order_by("seq"))
    assert {(e.host, e.user) for e in events} == {("bbs-01", "root")}
    assert all(e.source.startswith("127.") for e in events)
    assert events[1].cwd == "/tmp"
    assert verify_events() == []


def test_an_outage_of_the_server_loses_nothing_and_doubles_nothing(ssh_lab, agent, web) -> None:
    ssh_session(ssh_lab, agent.rc, ["echo before"])
    wait_for(lambda: stored_commands() == ["echo before"], 120, "first event")
    web.stop()
    during = [f"echo during {n}" for n in range(30)]
    ssh_session(ssh_lab, agent.rc, during[:15])
    ssh_session(ssh_lab, agent.rc, during[15:])
    pending = agent.spool / "pending"
    wait_for(lambda: len(list(pending.iterdir())) == 30, 120, "events spooled while down")
    web.start()
    wait_for(lambda: not any(pending.iterdir()), 120, "spool drained")
    assert stored_commands() == ["echo before", *during]
    seqs = list(CommandEvent.objects.values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == 31
    assert verify_events() == []


# -- the shipper's own guards, on a spool of files written here --------------------------


def load_shipper():
    """The shipper script as a module (it has no .py: it is installed as a command)."""
    loader = SourceFileLoader("omserver_audit_ship", str(AGENT / "omserver-audit-ship"))
    module = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(module)
    return module


def shipper_on(tmp_path: Path, url: str = "http://127.0.0.1:9/"):
    config = configparser.ConfigParser()
    config["shipper"] = {"url": url, "token": "t", "host": "bbs-01", "spool": str(tmp_path)}
    return load_shipper().Shipper(config["shipper"])


def drop(shipper, name: str, command: str, when: float | str | None = None) -> Path:
    """A command file as the profile snippet writes it."""
    path = shipper.spool / "incoming" / name
    stamp = time.time() if when is None else when
    path.write_bytes("\x00".join([str(stamp), "127.0.0.1", "/root", command, ""]).encode())
    return path


def test_the_reported_user_is_the_owner_of_the_command_file(tmp_path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    shipper = shipper_on(tmp_path / "spool")
    os.chown(drop(shipper, "100.1.1", "whoami"), pwd.getpwnam("nobody").pw_uid, -1)
    drop(shipper, "100.2.1", "id", when=f"{time.time():.6f}".replace(".", ","))  # de_DE locale
    assert shipper.collect() == 2
    events = [shipper.event(p) for p in sorted((shipper.spool / "pending").iterdir())]
    assert [(e["user"], e["command"]) for e in events] == [("nobody", "whoami"), ("root", "id")]
    assert oct(shipper.spool.stat().st_mode & 0o777) == "0o711"  # others can't list or read
    assert oct((shipper.spool / "pending").stat().st_mode & 0o777) == "0o700"


def test_links_and_fifos_planted_in_the_spool_are_never_reported(tmp_path) -> None:
    shipper = shipper_on(tmp_path / "spool")
    secret = tmp_path / "root-only"
    secret.write_bytes(b"1\x00x\x00/\x00forged as root\x00")
    incoming = shipper.spool / "incoming"
    (incoming / "200.1.1").symlink_to(secret)
    os.link(secret, incoming / "200.2.1")
    os.mkfifo(incoming / "200.3.1")  # opening it for reading would block a naive shipper
    assert shipper.collect() == 3
    pending = sorted((shipper.spool / "pending").iterdir())
    assert [shipper.event(path) for path in pending] == [None, None, None]


def test_a_new_install_numbers_above_anything_an_earlier_one_used(tmp_path) -> None:
    shipper = shipper_on(tmp_path / "spool")
    drop(shipper, "300.1.1", "uptime")
    shipper.collect()
    [first] = (shipper.spool / "pending").iterdir()
    assert int(first.name) > time.time_ns() // 1000 - 60_000_000  # not 1 again after a wipe


def test_a_refused_event_and_a_stray_file_leave_the_rest_of_the_batch_sent(
    tmp_path, web, inventory
) -> None:
    clear = tokens.issue("bbs-01", "alice", server=inventory.bbs_server)[1]
    shipper = shipper_on(tmp_path / "spool", f"http://127.0.0.1:{web.port}/api/audit/events/")
    shipper.token = clear
    now = time.time()
    drop(shipper, "400.1.1", "echo one", when=now)
    drop(shipper, "400.2.1", "echo from 1990", when=631152000)  # the server refuses it: 400
    (shipper.spool / "incoming" / "400.3.1").write_bytes(b"not a record")
    drop(shipper, "400.4.1", "echo four", when=now + 1)
    shipper.collect()
    assert shipper.flush()
    assert stored_commands() == ["echo one", "echo four"]
    assert len(list((shipper.spool / "rejected").iterdir())) == 2
    assert not any((shipper.spool / "pending").iterdir())


def test_refused_events_are_shown_and_retried_until_a_fix_on_the_server_lets_them_in(
    tmp_path, web, inventory, alice
) -> None:
    """An agent installed on a host before the host was in the inventory: its category's
    token does not cover it yet. Its events wait in rejected/, the audit page names the
    host, and once the host is added the agent's next retry stores them."""
    clear = tokens.issue("bbs agents", "alice", app_category=inventory.bbs)[1]
    spool = tmp_path / "spool"
    config = tmp_path / "agent.conf"
    config.write_text(
        "[shipper]\n"
        f"url = http://127.0.0.1:{web.port}/api/audit/events/\n"
        f"token = {clear}\nhost = bbs-02\nspool = {spool}\n"
        "poll = 0.2\nbackoff_max = 0.5\ntimeout = 5\nretry_rejected = 0.5\n"
    )
    shipper = spawn(
        [sys.executable, str(AGENT / "omserver-audit-ship"), "--config", str(config), "run"],
        tmp_path / "shipper.log",
    )
    try:
        wait_for(lambda: (spool / "incoming").is_dir(), 120, "shipper spool")
        for n, command in enumerate(["hostname", "uptime"]):
            written = spool / "incoming" / f".500.{n}"
            written.write_bytes(f"{time.time()}\x00127.0.0.1\x00/root\x00{command}\x00".encode())
            written.rename(spool / "incoming" / f"500.{n}.1")
        rejected = spool / "rejected"
        wait_for(lambda: len(list(rejected.iterdir())) == 2, 120, "events refused")
        page = logged_in(alice)
        wait_for(lambda: page.get("/audit/").context["rejected"], 120, "refusals noted")
        [row] = page.get("/audit/").context["rejected"]
        assert (row.host, row.events, row.token) == ("bbs-02", 2, "bbs agents")
        assert "bbs-02" in page.get("/audit/").content.decode()
        assert stored_commands() == []

        Server.objects.create(hostname="bbs-02", lan_ip="127.0.2.10", app_category=inventory.bbs)
        wait_for(lambda: stored_commands() == ["hostname", "uptime"], 120, "retried and stored")
        wait_for(lambda: not any(rejected.iterdir()), 120, "rejected/ emptied")
        assert page.get("/audit/").context["rejected"] == []
        assert verify_events() == []
    finally:
        stop(shipper)
