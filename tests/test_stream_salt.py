"""Live output on the Salt backend: a Command step's output reaches ``output`` while
it runs (through our ``omserver_stream`` module and the master's event bus), and
each host's result begins with exactly what went out live.

The backend runs in this process (or, to weigh its memory, in a child), on the
real salt-master and minions of the lab.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from omserver.backends import Backend, make_backend
from omserver.backends.capture import STREAMS
from omserver.config import BASE_DIR, Config
from omserver.sdk import HostResult, Target
from omserver.sdk.steps import Command
from tests.lab.salt import SaltLab
from tests.test_backends import PAYLOADS

pytestmark = pytest.mark.salt

MODULE = "omserver_stream"


@dataclass
class Recorder:
    """What a step handed to ``output`` and ``emit``, with the second each came."""

    started: float = field(default_factory=time.monotonic)
    chunks: list[tuple[float, str, str, str]] = field(default_factory=list)
    results: dict[str, tuple[float, HostResult]] = field(default_factory=dict)

    def output(self, host: str, stream: str, text: str) -> None:
        assert host not in self.results, f"output for {host} after its result"
        assert stream in STREAMS and text
        self.chunks.append((time.monotonic() - self.started, host, stream, text))

    def emit(self, result: HostResult) -> None:
        assert result.host not in self.results, f"a second result for {result.host}"
        self.results[result.host] = (time.monotonic() - self.started, result)

    def live(self, host: str, stream: str = "stdout") -> str:
        return "".join(text for _, h, s, text in self.chunks if (h, s) == (host, stream))

    def first(self, host: str, text: str, stream: str = "stdout") -> float:
        """When the live text of ``host`` came to contain ``text``."""
        seen = ""
        for at, h, s, chunk in self.chunks:
            if (h, s) == (host, stream):
                seen += chunk
                if text in seen:
                    return at
        raise AssertionError(f"{text!r} never went out live for {host}: {seen[-200:]!r}")

    def result(self, host: str) -> HostResult:
        return self.results[host][1]

    def assert_record_begins_with_live(self) -> None:
        for host, (_, result) in self.results.items():
            for stream in STREAMS:
                assert getattr(result, stream).startswith(self.live(host, stream)), (host, stream)


@pytest.fixture
def backend(salt_lab: SaltLab) -> Iterator[Backend]:
    # Salt's sync wrappers take the thread's current event loop, making one if there
    # is none and never closing it: give them one that is closed afterwards.
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    backend = make_backend(Config(salt_lab.settings()))
    try:
        yield backend
    finally:
        backend.close()
        asyncio.set_event_loop(None)
        loop.close()


def run(
    backend: Backend,
    targets: Sequence[Target],
    *argv: str,
    timeout: float = 60,
    limit: int = 1024 * 1024,
    env: dict[str, str] | None = None,
    live: bool = True,
) -> Recorder:
    recorder = Recorder()
    backend.run(
        Command(argv, env or {}),
        targets,
        timeout=timeout,
        output_limit=limit,
        emit=recorder.emit,
        output=recorder.output if live else None,
    )
    assert sorted(recorder.results) == sorted(t.hostname for t in targets)
    recorder.assert_record_begins_with_live()
    return recorder


def test_each_line_goes_out_while_the_command_runs(backend: Backend, salt_lab: SaltLab) -> None:
    script = "for i in 1 2 3 4; do echo line $i; sleep 1; done"
    run_ = run(backend, salt_lab.targets, "sh", "-c", script)
    for host in salt_lab.minion_ids:
        done, result = run_.results[host]
        assert (result.status, result.stdout) == ("ok", "line 1\nline 2\nline 3\nline 4")
        assert run_.live(host) == result.stdout  # nothing lost, nothing twice
        arrivals = [run_.first(host, f"line {i}") for i in (1, 2, 3, 4)]
        assert arrivals == sorted(arrivals)
        assert arrivals[0] <= done - 2  # the first line came while three more were to come


def test_stderr_goes_out_as_its_own_stream(backend: Backend, salt_lab: SaltLab) -> None:
    script = "echo out 1; echo err 1 >&2; sleep 2; echo out 2; echo err 2 >&2"
    run_ = run(backend, salt_lab.targets, "sh", "-c", script)
    for host in salt_lab.minion_ids:
        done, result = run_.results[host]
        assert (result.stdout, result.stderr) == ("out 1\nout 2", "err 1\nerr 2")
        assert (run_.live(host), run_.live(host, "stderr")) == (result.stdout, result.stderr)
        assert run_.first(host, "err 1", "stderr") <= done - 1


def test_arguments_arrive_literally(backend: Backend, salt_lab: SaltLab, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    payloads = [p.format(canary=canary) for p in PAYLOADS]
    script = 'printf "%s\\0" "$@"; sleep 1'  # the payloads are argv, never in the script
    run_ = run(backend, salt_lab.targets, "sh", "-c", script, "sh", *payloads)
    for host in salt_lab.minion_ids:
        result = run_.result(host)
        assert result.status == "ok"
        assert result.stdout.split("\0")[:-1] == payloads
        assert run_.live(host) == result.stdout
    assert not canary.exists()


def test_output_beyond_the_limit_goes_out_live_up_to_the_head(
    backend: Backend, salt_lab: SaltLab
) -> None:
    script = "seq 1 3000; sleep 1; echo end"
    run_ = run(backend, salt_lab.targets, "sh", "-c", script, limit=1000)
    for host in salt_lab.minion_ids:
        result, live = run_.result(host), run_.live(host)
        assert result.truncated and result.status == "ok"
        assert live.startswith("1\n2\n3\n") and len(live.encode()) <= 750  # the head
        assert result.stdout.startswith(live)
        rest = result.stdout[len(live) :]
        assert "bytes omitted" in rest and rest.endswith("\n2999\n3000\nend")
        assert len(result.stdout.encode()) <= 1000


CHILD = """
import json, resource, sys
from omserver.backends import make_backend
from omserver.config import Config
from omserver.sdk import Target
from omserver.sdk.steps import Command

settings, hosts, argv = json.loads(sys.argv[1])
backend = make_backend(Config(settings))
live = dict.fromkeys(hosts, 0)
results = []

def output(host, stream, text):
    live[host] += len(text)

idle = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
backend.run(
    Command(tuple(argv)),
    [Target(host, "127.0.0.1") for host in hosts],
    timeout=300,
    output_limit=1024 * 1024,
    emit=results.append,
    output=output,
)
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
backend.close()
print(json.dumps({
    "growth_kib": peak - idle,
    "results": [
        {"host": r.host, "status": r.status, "truncated": r.truncated,
         "bytes": len(r.stdout.encode()), "end": r.stdout[-100:], "live": live[r.host]}
        for r in results
    ],
}))
"""


def test_sixty_mib_printed_costs_the_job_little_memory(salt_lab: SaltLab) -> None:
    """The job process's peak RSS grows by far less than the output (a bounded record)."""
    # A line first, and a pause: however busy the machine, something goes out live
    # before the flood (a command over before its first chunk would be only its record).
    argv = ["sh", "-c", "echo start; sleep 1; head -c 62914560 /dev/zero | tr '\\0' x"]
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps([salt_lab.settings(), salt_lab.minion_ids, argv])],
        cwd=BASE_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["growth_kib"] < 64 * 1024, report
    assert len(report["results"]) == len(salt_lab.minion_ids)
    for result in report["results"]:
        assert (result["status"], result["truncated"]) == ("ok", True)
        assert result["bytes"] <= 1024 * 1024
        assert result["end"] == "x" * 100  # the tail is kept
        assert 0 < result["live"] <= 1024 * 1024 - 64 * 1024  # the head went out live


def test_a_minion_without_the_module_is_synced_and_runs(
    backend: Backend, salt_lab: SaltLab
) -> None:
    missing = salt_lab.minion_ids[0]
    run(backend, salt_lab.targets, "true")  # every minion has the module now
    module = salt_lab.synced_module(missing, MODULE)
    module.unlink()
    run_ = run(backend, salt_lab.targets, "sh", "-c", "echo synced; sleep 1; echo again")
    for host in salt_lab.minion_ids:
        assert (run_.result(host).status, run_.result(host).stdout) == ("ok", "synced\nagain")
        assert run_.live(host) == "synced\nagain"
    assert module.is_file()


def test_a_minion_with_an_older_module_is_synced_and_runs(
    backend: Backend, salt_lab: SaltLab
) -> None:
    stale = salt_lab.minion_ids[0]
    run(backend, salt_lab.targets, "true")
    module = salt_lab.synced_module(stale, MODULE)
    module.write_text(module.read_text() + "\n# an older copy\n")
    run_ = run(backend, salt_lab.targets, "echo", "fresh")
    assert {r.stdout for _, r in run_.results.values()} == {"fresh"}
    assert "older copy" not in module.read_text()


def test_without_live_output_salts_own_cmd_run_all_runs_the_step(
    backend: Backend, salt_lab: SaltLab
) -> None:
    """``output`` None (``modules.live_output`` off): the plain call, the same record."""
    run(backend, salt_lab.targets, "true")
    module = salt_lab.synced_module(salt_lab.minion_ids[0], MODULE)
    module.unlink()  # not needed, so not synced
    try:
        script = 'echo "$A"; echo e >&2; exit 3'
        run_ = run(backend, salt_lab.targets, "sh", "-c", script, env={"A": "a b"}, live=False)
        for _, result in run_.results.values():
            assert (result.status, result.rc, result.stdout, result.stderr) == (
                "failed",
                3,
                "a b",
                "e",
            )
        assert not run_.chunks and not module.exists()
        run_ = run(backend, salt_lab.targets, "sleep", "30", timeout=3, live=False)
        assert {r.status for _, r in run_.results.values()} == {"timeout"}
    finally:
        run(backend, salt_lab.targets, "true")  # synced again, for the tests after this one


def test_a_timeout_keeps_what_was_printed_before_it(backend: Backend, salt_lab: SaltLab) -> None:
    script = "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.5; done"
    run_ = run(backend, salt_lab.targets, "sh", "-c", script, timeout=5)
    for host in salt_lab.minion_ids:
        done, result = run_.results[host]
        live = run_.live(host)
        assert result.status == "timeout"
        assert live.startswith("tick 1\ntick 2\n") and run_.first(host, "tick 1") <= done - 2
        assert result.stdout.startswith(live)


def test_events_out_of_order_go_out_in_order_and_none_after_the_result() -> None:
    """Two minion events may reach the master's bus in either order (two workers)."""
    from omserver.backends.saltstack import _LiveOutput

    recorder = Recorder()
    live = _LiveOutput(recorder.output, ["web01"])
    live.add("web01", {"seq": 1, "stdout": "\ntwo"})
    assert recorder.live("web01") == ""
    live.add("web01", {"seq": 0, "stdout": "one", "stderr": "oops"})
    live.add("web01", {"seq": 0, "stdout": "one"})  # a duplicate
    live.add("db01", {"seq": 0, "stdout": "not ours"})
    assert (recorder.live("web01"), recorder.live("web01", "stderr")) == ("one\ntwo", "oops")
    ret = {"retcode": 0, "stdout": "one\ntwo\nthree", "stderr": "oops", "head": {"stdout": 13}}
    result = live.settle(HostResult("web01", "ok", 0, ret["stdout"], "oops"), {"ret": ret})
    recorder.emit(result)
    assert recorder.live("web01") == "one\ntwo\nthree"  # the rest came with the return
    live.add("web01", {"seq": 2, "stdout": "\nthree"})  # overtaken by the return: ignored
    recorder.assert_record_begins_with_live()
    late = _LiveOutput(recorder.output, ["db01"])
    late.add("db01", {"seq": 0, "stdout": "half a line"})
    timeout = late.settle(HostResult("db01", "timeout", stderr="no answer"), None)
    assert (timeout.stdout, timeout.stderr) == ("half a line", "no answer")
    quick = _LiveOutput(recorder.output, ["app01"])  # over before its first chunk
    ret = {"retcode": 0, "stdout": "done", "stderr": "", "head": {"stdout": 4}}
    quick.settle(HostResult("app01", "ok", 0, "done"), {"ret": ret})
    assert recorder.live("app01") == ""  # the record says it all
