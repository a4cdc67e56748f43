"""Both backends on real targets, through the daemon's path (child process, ctx,
backend): one result shape, each host's result streamed as it finishes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from omserver.config import Config
from omserver.sdk import Target
from tests.lab.fixtures import BackendLab
from tests.lab.runs import run_steps
from tests.lab.service import LabService

PAYLOADS = [
    "5; touch {canary}",
    "$(touch {canary})",
    "`touch {canary}`",
    "x\ntouch {canary}",
    "| touch {canary}",
    "{{{{ lookup('pipe', 'touch {canary}') }}}}",
    "$HOME ~ * ?",
    "python_shell=True",
    "--help",
    "",
]


def cmd(*argv: str, **keywords: object) -> tuple[str, list, dict]:
    return ("cmd", [list(argv)], keywords)


def test_a_command_gives_each_hosts_output_and_return_code(backend_lab: BackendLab) -> None:
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        cmd("sh", "-c", "echo out; echo err >&2"),
        cmd("sh", "-c", "echo half; echo wrong >&2; exit 3"),
    )
    for target in backend_lab.targets:
        first, second = run.of(target.hostname)
        assert (first.status, first.rc, first.stdout, first.stderr) == ("ok", 0, "out", "err")
        assert (second.status, second.rc, second.stdout) == ("failed", 3, "half")
        assert "wrong" in second.stderr
        assert 0 < first.duration < 30 and not first.truncated
        assert run.final[target.hostname] == second  # the later step's result replaces


def test_arguments_arrive_literally_and_nothing_is_run(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    canary = tmp_path / "canary"
    payloads = [p.format(canary=canary) for p in PAYLOADS]
    run = run_steps(backend_lab.config(), backend_lab.targets, cmd("printf", "%s\\0", *payloads))
    for result in run.final.values():
        assert result.status == "ok"
        assert result.stdout.split("\0")[:-1] == payloads
    assert not canary.exists()


def test_a_missing_program_fails_the_host(backend_lab: BackendLab) -> None:
    run = run_steps(backend_lab.config(), backend_lab.targets, cmd("/nonexistent/program"))
    assert {r.status for r in run.final.values()} == {"failed"}
    assert all(r.stderr for r in run.final.values())


def test_output_beyond_the_limit_is_cut_and_flagged(backend_lab: BackendLab) -> None:
    run = run_steps(
        backend_lab.config(OMSERVER_MODULES_OUTPUT_LIMIT="1000"),
        backend_lab.targets,
        cmd("sh", "-c", "yes abc | head -c 5000; yes err | head -c 3000 >&2"),
    )
    for result in run.final.values():
        assert (len(result.stdout), len(result.stderr), result.truncated) == (1000, 1000, True)
        assert result.stdout.startswith("abc\nabc\n")
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,  # the default: 1 MiB
        cmd("sh", "-c", "yes 0123456789 | head -c 3000000"),
    )
    for result in run.final.values():
        assert (len(result.stdout.encode()), result.truncated) == (1024 * 1024, True)
        assert result.stdout.startswith("0123456789\n")


def test_output_beyond_what_salt_carries_never_reaches_salt(backend_lab: BackendLab) -> None:
    """The lab master's max_event_size is 4 MiB: a 6 MB output is cut on the host, to
    the limit, before Salt (which would drop the whole value) ever carries it."""
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        cmd("sh", "-c", "yes 0123456789 | head -c 6000000"),
    )
    for result in run.final.values():
        assert (result.status, result.truncated) == ("ok", True)
        assert len(result.stdout.encode()) == 1024 * 1024
        assert result.stdout.startswith("0123456789\n") and "bytes omitted" in result.stdout


def test_copy_writes_the_file_with_its_mode_on_each_host(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    source = backend_lab.files_dir / "copytest" / "app.conf"
    source.parent.mkdir(exist_ok=True)
    source.write_text("listen 8080;\n")
    for target in backend_lab.targets:  # the hosts share this disk: one destination each
        dest = tmp_path / target.hostname / "app.conf"
        dest.parent.mkdir()
        run = run_steps(
            backend_lab.config(), [target], ("copy", ["copytest/app.conf", str(dest), "0600"], {})
        )
        assert run.final[target.hostname].status == "ok"
        assert dest.read_text() == "listen 8080;\n"
        assert stat.S_IMODE(dest.stat().st_mode) == 0o600


def test_a_copy_that_cannot_be_done_fails(backend_lab: BackendLab, tmp_path: Path) -> None:
    (backend_lab.files_dir / "copytest").mkdir(exist_ok=True)
    (backend_lab.files_dir / "copytest" / "app.conf").write_text("x\n")
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        ("copy", ["copytest/absent.conf", str(tmp_path / "a.conf")], {}),
    )
    assert {r.status for r in run.final.values()} == {"failed"}
    assert all("absent.conf" in r.stderr for r in run.final.values())
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        ("copy", ["copytest/app.conf", str(tmp_path / "no" / "dir" / "a.conf")], {}),
    )
    assert {r.status for r in run.final.values()} == {"failed"}


def test_a_service_restart_gives_the_service_a_new_pid(
    backend_lab: BackendLab, lab_service: LabService
) -> None:
    for target in backend_lab.targets:  # the hosts share one machine: one at a time
        before = lab_service.pid()
        run = run_steps(
            backend_lab.config(), [target], ("service", [lab_service.name, "restart"], {})
        )
        assert run.final[target.hostname].status == "ok"
        assert lab_service.pid() not in (None, before)
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        ("service", ["omlab-no-such-service", "restart"], {}),
    )
    assert {r.status for r in run.final.values()} == {"failed"}


def test_each_host_is_streamed_as_it_finishes(backend_lab: BackendLab) -> None:
    slow, *fast = [t.hostname for t in backend_lab.targets]
    run = run_steps(
        backend_lab.config(),
        backend_lab.targets,
        cmd("sh", "-c", f'[ "$OMLAB_HOST" = {slow} ] && sleep 3; echo done'),
    )
    assert {r.stdout for r in run.final.values()} == {"done"}
    for host in fast:
        assert run.at(host) < run.at(slow) - 2


def test_a_step_that_outlives_its_timeout_ends_in_timeout(backend_lab: BackendLab) -> None:
    run = run_steps(backend_lab.config(), backend_lab.targets, cmd("sleep", "30", timeout=2))
    assert {r.status for r in run.final.values()} == {"timeout"}
    assert run.elapsed < 8


def test_a_stopped_host_is_reported_within_the_job_timeout(backend_lab: BackendLab) -> None:
    down, *up = [t.hostname for t in backend_lab.targets]
    backend_lab.stop_host(down)
    try:
        run = run_steps(backend_lab.config(), backend_lab.targets, cmd("echo", "alive"), timeout=15)
    finally:
        backend_lab.start_host(down)
    # a stopped minion may be silent or busy to Salt; a closed SSH port is unreachable
    expected = {"unreachable", "timeout"} if backend_lab.backend == "saltstack" else {"unreachable"}
    assert run.final[down].status in expected
    assert run.final[down].stderr
    for host in up:
        assert (run.final[host].status, run.final[host].stdout) == ("ok", "alive")
    assert run.elapsed < 15
    again = run_steps(backend_lab.config(), backend_lab.targets, cmd("echo", str(os.getpid())))
    assert {r.stdout for r in again.final.values()} == {str(os.getpid())}  # it is back


def test_ansibles_local_connection_runs_on_the_control_node() -> None:
    """``ansible.connection = local``: no SSH at all, for a daemon on the host it manages."""
    config = Config({"OMSERVER_DAEMON_BACKEND": "ansible", "OMSERVER_ANSIBLE_CONNECTION": "local"})
    targets = [Target("local-1", "127.0.0.1"), Target("local-2", "127.0.0.1")]
    run = run_steps(config, targets, cmd("sh", "-c", "echo $OMLAB_HOST-$$"))
    assert {r.status for r in run.final.values()} == {"ok"}
    assert len({r.stdout for r in run.final.values()}) == 2  # two runs, one per host
