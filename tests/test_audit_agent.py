"""The host agent end to end: a real bash session over SSH (sshd lab target) with the
profile snippet, the real shipper, uWSGI serving the ingest endpoint, events in the
test database; and an outage of the web server that loses nothing and doubles nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from omserver.config import BASE_DIR
from omserverweb.audit import tokens
from omserverweb.audit.models import CommandEvent
from omserverweb.audit.services import verify_events
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
        wait_for(lambda: port_open("127.0.0.1", self.port), 30, "uWSGI")

    def stop(self) -> None:
        stop(self.proc)
        wait_for(lambda: not port_open("127.0.0.1", self.port), 10, "uWSGI stopped")


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
    wait_for(lambda: (spool / "incoming").is_dir(), 10, "shipper spool")
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
    wait_for(lambda: len(stored_commands()) >= len(COMMANDS), 20, "events in the database")
    assert stored_commands() == COMMANDS
    events = list(CommandEvent.objects.order_by("seq"))
    assert {(e.host, e.user) for e in events} == {("bbs-01", "root")}
    assert all(e.source.startswith("127.") for e in events)
    assert events[1].cwd == "/tmp"
    assert verify_events() == []


def test_an_outage_of_the_server_loses_nothing_and_doubles_nothing(ssh_lab, agent, web) -> None:
    ssh_session(ssh_lab, agent.rc, ["echo before"])
    wait_for(lambda: stored_commands() == ["echo before"], 20, "first event")
    web.stop()
    during = [f"echo during {n}" for n in range(30)]
    ssh_session(ssh_lab, agent.rc, during[:15])
    ssh_session(ssh_lab, agent.rc, during[15:])
    pending = agent.spool / "pending"
    wait_for(lambda: len(list(pending.iterdir())) == 30, 20, "events spooled while down")
    web.start()
    wait_for(lambda: not any(pending.iterdir()), 30, "spool drained")
    assert stored_commands() == ["echo before", *during]
    seqs = list(CommandEvent.objects.values_list("seq", flat=True))
    assert len(seqs) == len(set(seqs)) == 31
    assert verify_events() == []
