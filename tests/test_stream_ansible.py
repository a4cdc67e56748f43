"""The Ansible backend streams a command's output while it runs, on real sshd targets.

Called directly (``backend.run`` in this process, or in a child for memory):
``output`` sees each host's lines as they are printed, and the host's final
result begins with exactly the text that went out live.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omserver.backends import make_backend
from omserver.backends.base import Backend
from omserver.backends.capture import Capture
from omserver.config import Config
from omserver.sdk import HostResult, Target
from omserver.sdk.steps import Command
from tests.lab.procs import wait_for
from tests.lab.sshd import SshLab
from tests.test_backends import PAYLOADS

pytestmark = pytest.mark.ssh

MIB = 1024 * 1024
LOCAL = {"OMSERVER_DAEMON_BACKEND": "ansible", "OMSERVER_ANSIBLE_CONNECTION": "local"}
LOCAL_TARGETS = [Target("local-1", "127.0.0.1"), Target("local-2", "127.0.0.1")]


@dataclass
class Run:
    """What one ``backend.run`` handed back, each event with its monotonic time."""

    events: list[tuple[float, str, str, str | HostResult]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def output(self, host: str, stream: str, text: str) -> None:
        with self.lock:
            self.events.append((time.monotonic(), host, stream, text))

    def emit(self, result: HostResult) -> None:
        with self.lock:
            self.events.append((time.monotonic(), result.host, "result", result))

    def live(self, host: str, stream: str) -> str:
        return "".join(e[3] for e in self.events if e[1] == host and e[2] == stream)

    def chunks(self, host: str) -> list[tuple[float, str]]:
        return [(e[0], e[3]) for e in self.events if e[1] == host and e[2] == "stdout"]

    def result(self, host: str) -> HostResult:
        (found,) = [e[3] for e in self.events if e[1] == host and e[2] == "result"]
        return found

    def result_at(self, host: str) -> float:
        return next(e[0] for e in self.events if e[1] == host and e[2] == "result")

    def check_live_is_the_records_start(self, hosts: Sequence[str]) -> None:
        """Each host's result comes last and begins with exactly what went out live."""
        for host in hosts:
            mine = [e for e in self.events if e[1] == host]
            assert mine[-1][2] == "result", "output arrived after the host's result"
            result = self.result(host)
            assert result.stdout.startswith(self.live(host, "stdout"))
            assert result.stderr.startswith(self.live(host, "stderr"))


@pytest.fixture
def backend(ssh_lab: SshLab) -> Iterator[Backend]:
    backend = make_backend(Config(ssh_lab.settings()))
    yield backend
    backend.close()


def run(
    backend: Backend,
    targets: Sequence[Target],
    *argv: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    limit: int = MIB,
    live: bool = True,
) -> Run:
    events = Run()
    backend.run(
        Command(argv, env or {}),
        targets,
        timeout=timeout,
        output_limit=limit,
        emit=events.emit,
        output=events.output if live else None,
    )
    return events


TICKS = "for i in 1 2 3 4; do echo line $i; sleep 1; done"


def test_lines_reach_output_while_the_command_runs(backend: Backend, ssh_lab: SshLab) -> None:
    events = run(backend, ssh_lab.targets, "sh", "-c", TICKS)
    hosts = [t.hostname for t in ssh_lab.targets]
    events.check_live_is_the_records_start(hosts)
    for host in hosts:
        result = events.result(host)
        assert (result.status, result.rc) == ("ok", 0)
        # line breaks at the very end are left out, live too (see capture.py)
        assert result.stdout == events.live(host, "stdout") == "line 1\nline 2\nline 3\nline 4"
        chunks = events.chunks(host)
        assert chunks[0][1] == "line 1"
        assert chunks[0][0] <= events.result_at(host) - 2  # seen while the command still ran
        assert len(chunks) >= 3  # a second between lines: they come one by one


def test_stderr_is_its_own_stream_and_the_environment_arrives(
    backend: Backend, ssh_lab: SshLab
) -> None:
    value = "two words $HOME `id` ' \""
    events = run(
        backend,
        ssh_lab.targets,
        "sh",
        "-c",
        'echo "$GREETING"; echo oops >&2; exit 3',
        env={"GREETING": value},
    )
    hosts = [t.hostname for t in ssh_lab.targets]
    events.check_live_is_the_records_start(hosts)
    for host in hosts:
        result = events.result(host)
        assert (result.status, result.rc) == ("failed", 3)
        assert result.stdout == events.live(host, "stdout") == value
        assert result.stderr == events.live(host, "stderr") == "oops"


def test_arguments_arrive_literally_and_nothing_is_run(
    backend: Backend, ssh_lab: SshLab, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    payloads = [p.format(canary=canary) for p in PAYLOADS]
    events = run(
        backend,
        ssh_lab.targets,
        "sh",
        "-c",
        'printf "%s\\0" "$@" "$EXTRA"',
        "sh",
        *payloads,
        env={"EXTRA": payloads[1]},
    )
    for target in ssh_lab.targets:
        result = events.result(target.hostname)
        assert result.status == "ok"
        assert result.stdout.split("\0")[:-1] == [*payloads, payloads[1]]
        assert result.stdout == events.live(target.hostname, "stdout")
    assert not canary.exists()


def test_output_beyond_the_limit_goes_out_up_to_the_head_and_keeps_the_tail(
    backend: Backend, ssh_lab: SshLab
) -> None:
    printed = b"".join(b"line %05d\n" % i for i in range(1000))  # 11,000 bytes
    reference = Capture(1000)
    head = reference.feed(printed) + reference.finish()
    events = run(
        backend,
        ssh_lab.targets,
        "sh",
        "-c",
        "i=0; while [ $i -lt 1000 ]; do printf 'line %05d\\n' $i; i=$((i+1)); done",
        limit=1000,
    )
    for target in ssh_lab.targets:
        result = events.result(target.hostname)
        assert (result.status, result.truncated) == ("ok", True)
        assert events.live(target.hostname, "stdout") == head == printed[: len(head)].decode()
        assert result.stdout == reference.text()  # the head, a note, the tail
        assert "bytes omitted" in result.stdout[len(head) :]
        assert "line 009" in result.stdout[len(head) :]  # from the tail


def test_hosts_printing_at_once_each_get_their_own_text(backend: Backend, ssh_lab: SshLab) -> None:
    """Many frames from several workers through one pipe: none mixed, none lost."""
    events = run(backend, ssh_lab.targets, "sh", "-c", 'yes "$OMLAB_HOST ü" | head -c 3000000')
    for target in ssh_lab.targets:
        line = f"{target.hostname} ü\n".encode()
        reference = Capture(MIB)
        head = reference.feed(line * (3000000 // len(line) + 1)) + reference.finish()
        result = events.result(target.hostname)
        assert (result.status, result.truncated) == ("ok", True)
        assert events.live(target.hostname, "stdout") == head
        assert result.stdout.startswith(head)
        assert len(events.chunks(target.hostname)) > 1


def test_without_live_output_ansibles_own_command_module_runs_the_step(
    backend: Backend, ssh_lab: SshLab
) -> None:
    """``output`` None (``modules.live_output`` off): the plain call, the same record."""
    events = run(
        backend, ssh_lab.targets, "sh", "-c", 'echo "$A"; echo e >&2', env={"A": "a b"}, live=False
    )
    for target in ssh_lab.targets:
        result = events.result(target.hostname)
        assert (result.status, result.rc, result.stdout, result.stderr) == ("ok", 0, "a b", "e")
    assert {e[2] for e in events.events} == {"result"}


MEMORY_PROBE = """
import json, resource, sys
from omserver.backends import make_backend
from omserver.config import Config
from omserver.sdk import Target
from omserver.sdk.steps import Command

settings, target = json.loads(sys.argv[1])
target = Target(**target)
backend = make_backend(Config(settings))
results, live = [], [0]

def output(host, stream, text):
    live[0] += len(text.encode())

def step(argv):
    backend.run(Command(tuple(argv)), [target], timeout=120, output_limit=1024 * 1024,
                emit=results.append, output=output)

step(["true"])  # imports, plugins, the ssh master connection
idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
step(["sh", "-c", "yes 0123456789 | head -c 62914560"])
result = results[-1]
print(json.dumps({
    "idle_kib": idle,
    "peak_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    "workers_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
    "status": result.status,
    "truncated": result.truncated,
    "stdout_bytes": len(result.stdout.encode()),
    "live_bytes": live[0],
    "tail": result.stdout[-16:],
}))
"""


def test_sixty_mib_printed_stays_out_of_the_job_process_and_the_workers(
    ssh_lab: SshLab,
) -> None:
    target = ssh_lab.targets[0]
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            MEMORY_PROBE,
            json.dumps([ssh_lab.settings(), target.__dict__]),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert probe.returncode == 0, probe.stderr
    figures = json.loads(probe.stdout.splitlines()[-1])
    assert (figures["status"], figures["truncated"]) == ("ok", True), figures
    assert figures["tail"] == "0123456789\n01234"  # the end of the output is kept
    assert 0 < figures["live_bytes"] < MIB
    growth_mib = (figures["peak_kib"] - figures["idle_kib"]) / 1024
    assert growth_mib < 64, figures
    # a worker is a fork of the job process: its size is the job's and what it held
    assert (figures["workers_kib"] - figures["idle_kib"]) / 1024 < 64, figures


def test_a_timeout_keeps_what_was_printed_and_ends_the_remote_command(
    backend: Backend, ssh_lab: SshLab, tmp_path: Path
) -> None:
    target = ssh_lab.targets[0]
    pidfile = tmp_path / "pid"
    script = f"echo $$ > {pidfile}; echo started; while :; do echo tick; sleep 0.2; done"
    events = run(backend, [target], "sh", "-c", script, timeout=3)
    result = events.result(target.hostname)
    assert result.status == "timeout"
    assert result.stdout.startswith("started\ntick\ntick")
    assert result.stdout == events.live(target.hostname, "stdout")
    events.check_live_is_the_records_start([target.hostname])
    pid = pidfile.read_text().strip()
    wait_for(lambda: not Path(f"/proc/{pid}").exists(), 30, f"the end of remote pid {pid}")


def test_an_unreachable_host_is_reported_beside_a_streaming_one(ssh_lab: SshLab) -> None:
    down, up = ssh_lab.targets
    ssh_lab.stop_target(down.hostname)
    backend = make_backend(Config(ssh_lab.settings()))
    try:
        events = run(backend, ssh_lab.targets, "sh", "-c", "echo alive; exit 255")
    finally:
        backend.close()
        ssh_lab.start_target(down.hostname)
    assert events.result(down.hostname).status == "unreachable"
    assert events.result(down.hostname).stderr
    # the command's own 255 is its return code, not a lost connection
    assert (events.result(up.hostname).status, events.result(up.hostname).rc) == ("failed", 255)
    assert events.live(up.hostname, "stdout") == events.result(up.hostname).stdout == "alive"


def test_the_local_connection_streams_too() -> None:
    backend = make_backend(Config(LOCAL))
    try:
        events = run(backend, LOCAL_TARGETS, "sh", "-c", f'echo "$WHO"; {TICKS}', env={"WHO": "me"})
    finally:
        backend.close()
    hosts = [t.hostname for t in LOCAL_TARGETS]
    events.check_live_is_the_records_start(hosts)
    for host in hosts:
        result = events.result(host)
        assert result.status == "ok"
        assert result.stdout == events.live(host, "stdout")
        assert result.stdout.startswith("me\nline 1\nline 2")
        assert events.chunks(host)[0][0] <= events.result_at(host) - 2
