"""The seven classic modules, on both backends, checked against the truth on the targets.

The targets all run on this machine, so where a check needs each host's own
effect (a written file, a restarted service) the module runs on one host at a
time, or its settings point each run at a fresh path.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from pathlib import Path

from tests.lab.fixtures import BackendLab
from tests.lab.runs import run_module
from tests.lab.service import LabService


def hosts(lab: BackendLab) -> set[str]:
    return {t.hostname for t in lab.targets}


def numbered_log(path: Path, count: int) -> list[str]:
    lines = [f"{path.name} line {n}: sshd[{n}] session opened" for n in range(1, count + 1)]
    path.write_text("\n".join(lines) + "\n")
    return lines


def test_1001_shows_exactly_the_last_n_lines_of_the_system_log(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    lines = numbered_log(tmp_path / "messages", 120)
    config = backend_lab.config(
        {
            1001: {
                "log_files": [
                    str(tmp_path / "syslog"),  # absent
                    str(tmp_path / "messages"),
                ]
            }
        }
    )
    run = run_module(config, 1001, backend_lab.targets, {"lines": 7})
    assert set(run.final) == hosts(backend_lab)
    for result in run.final.values():
        assert result.status == "ok"
        assert result.stdout.splitlines() == lines[-7:]
    whole = run_module(config, 1001, backend_lab.targets, {})  # the default: 50
    assert {len(r.stdout.splitlines()) for r in whole.final.values()} == {50}


def test_1002_shows_the_last_n_lines_of_the_auth_log(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    lines = numbered_log(tmp_path / "auth.log", 30)
    config = backend_lab.config({1002: {"log_files": [str(tmp_path / "auth.log")]}})
    run = run_module(config, 1002, backend_lab.targets, {"lines": 12})
    assert {tuple(r.stdout.splitlines()) for r in run.final.values()} == {tuple(lines[-12:])}


def test_1003_shows_the_first_line_of_etc_issue(backend_lab: BackendLab) -> None:
    truth = Path("/etc/issue").read_text().splitlines()[0]
    run = run_module(backend_lab.config(), 1003, backend_lab.targets)
    assert set(run.final) == hosts(backend_lab)
    assert {(r.status, r.stdout) for r in run.final.values()} == {("ok", truth)}


def test_1004_lists_the_kernel_modules(backend_lab: BackendLab, tmp_path: Path) -> None:
    run = run_module(backend_lab.config(), 1004, backend_lab.targets)
    if shutil.which("lsmod"):
        truth = subprocess.run(["lsmod"], capture_output=True, text=True, check=True).stdout
        assert {(r.status, r.stdout) for r in run.final.values()} == {("ok", truth.rstrip())}
    elif Path("/proc/modules").exists():
        truth = Path("/proc/modules").read_text()
        assert {(r.status, r.stdout) for r in run.final.values()} == {("ok", truth.rstrip())}
    else:  # a kernel without loadable modules (this lab's VM): the host says so
        assert {r.status for r in run.final.values()} == {"failed"}
        assert all("/proc/modules" in r.stderr for r in run.final.values())
        listing = tmp_path / "modules"
        listing.write_text("ext4 1019904 1 - Live 0x0000000000000000\n")
        config = backend_lab.config({1004: {"modules_file": str(listing)}})
        run = run_module(config, 1004, backend_lab.targets)
        assert {(r.status, r.stdout) for r in run.final.values()} == {
            ("ok", listing.read_text().rstrip())
        }


def test_1005_copies_the_file_to_each_host_then_applies_it(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    source = backend_lab.files_dir / "classic" / "nginx.conf"
    source.parent.mkdir(exist_ok=True)
    source.write_text("worker_processes 4;\n")
    for target in backend_lab.targets:
        dest = tmp_path / target.hostname / "nginx.conf"
        dest.parent.mkdir()
        config = backend_lab.config(
            {
                1005: {
                    "files": {
                        "nginx": {
                            "source": "classic/nginx.conf",
                            "dest": str(dest),
                            "mode": "0640",
                            "then": ["cp", str(dest), f"{dest}.applied"],
                        }
                    }
                }
            }
        )
        run = run_module(config, 1005, [target], {"file": "nginx"})
        copied, applied = run.of(target.hostname)
        assert (copied.status, applied.status) == ("ok", "ok")
        assert dest.read_text() == "worker_processes 4;\n"
        assert stat.S_IMODE(dest.stat().st_mode) == 0o640
        assert Path(f"{dest}.applied").read_text() == "worker_processes 4;\n"  # ran after


def test_1005_does_not_apply_what_it_could_not_copy(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    marker = tmp_path / "applied"
    config = backend_lab.config(
        {
            1005: {
                "files": {
                    "haproxy": {
                        "source": "classic/absent.cfg",
                        "dest": str(tmp_path / "haproxy.cfg"),
                        "then": ["touch", str(marker)],
                    }
                }
            }
        }
    )
    run = run_module(config, 1005, backend_lab.targets, {"file": "haproxy"})
    assert {r.status for r in run.final.values()} == {"failed"}
    assert not marker.exists()


def test_1005_can_reload_a_service_after_the_copy(
    backend_lab: BackendLab, tmp_path: Path, lab_service: LabService
) -> None:
    (backend_lab.files_dir / "classic").mkdir(exist_ok=True)
    (backend_lab.files_dir / "classic" / "rsyslog.conf").write_text("*.* /var/log/all\n")
    target = backend_lab.targets[0]
    before = lab_service.pid()
    config = backend_lab.config(
        {
            1005: {
                "files": {
                    "rsyslog": {
                        "source": "classic/rsyslog.conf",
                        "dest": str(tmp_path / "rsyslog.conf"),
                        "then": {"service": lab_service.name, "action": "reload"},
                    }
                }
            }
        }
    )
    run = run_module(config, 1005, [target], {"file": "rsyslog"})
    assert run.final[target.hostname].status == "ok"
    assert lab_service.pid() not in (None, before)


def test_1006_shows_the_first_config_file_that_exists(
    backend_lab: BackendLab, tmp_path: Path
) -> None:
    conf = tmp_path / "my.cnf"
    conf.write_text("[mysqld]\nbind-address = 127.0.0.1\n")
    config = backend_lab.config(
        {1006: {"configs": {"mysql": [str(tmp_path / "absent.cnf"), str(conf)]}}}
    )
    run = run_module(config, 1006, backend_lab.targets, {"service": "mysql"})
    assert {(r.status, r.stdout) for r in run.final.values()} == {
        ("ok", "[mysqld]\nbind-address = 127.0.0.1")
    }
    missing = backend_lab.config({1006: {"configs": {"redis": [str(tmp_path / "absent")]}}})
    run = run_module(missing, 1006, backend_lab.targets, {"service": "redis"})
    assert {r.status for r in run.final.values()} == {"failed"}
    assert all("none of these files exists" in r.stderr for r in run.final.values())


def test_1007_restarts_the_service_and_its_pid_changes(
    backend_lab: BackendLab, lab_service: LabService
) -> None:
    config = backend_lab.config({1007: {"services": {"nginx": ["omlab-absent", lab_service.name]}}})
    for target in backend_lab.targets:  # one machine: restart through one host at a time
        before = lab_service.pid()
        run = run_module(config, 1007, [target], {"service": "nginx"})
        found, restarted = run.of(target.hostname)
        assert (found.status, found.stdout) == ("ok", lab_service.name)
        assert restarted.status == "ok"
        assert lab_service.pid() not in (None, before)


def test_1007_fails_a_host_without_the_service(backend_lab: BackendLab) -> None:
    config = backend_lab.config({1007: {"services": {"haproxy": ["omlab-absent"]}}})
    run = run_module(config, 1007, backend_lab.targets, {"service": "haproxy"})
    assert {r.status for r in run.final.values()} == {"failed"}
    assert all("none of these services is installed" in r.stderr for r in run.final.values())
