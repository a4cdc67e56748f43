"""Book-style modules (class Modulehandle) still run, their answers normalized."""

from __future__ import annotations

from pathlib import Path

import pytest

from omserver.modules.legacy import normalize, target_host
from omserver.sdk import Target
from tests.lab.fixtures import BackendLab
from tests.lab.runs import FIXTURE_MODULES, run_module
from tests.lab.salt import SaltLab

WEB = Target(hostname="web-01", lan_ip="10.0.0.1")
DB = Target(hostname="db-01", lan_ip="10.0.0.2")


def test_the_books_host_string_helper() -> None:
    hosts = "10.0.0.1*web-01,10.0.0.2*db-01"
    assert target_host(hosts, "IP") == ["10.0.0.1", "10.0.0.2"]
    assert target_host(hosts, "SN") == ["web-01", "db-01"]


@pytest.mark.salt
def test_a_book_style_salt_module_runs_through_the_adapter(
    salt_lab: SaltLab, tmp_path: Path
) -> None:
    lab = BackendLab(
        "saltstack", salt_lab.targets, salt_lab.settings(), salt_lab.file_roots, salt_lab, tmp_path
    )
    run = run_module(lab.config(), 9997, lab.targets, {"lines": 4}, modules_dir=FIXTURE_MODULES)
    assert set(run.final) == set(salt_lab.minion_ids)
    assert {(r.status, r.rc, r.stdout) for r in run.final.values()} == {("ok", 0, "1\n2\n3\n4")}


def test_salts_dict_gives_each_host_its_output_and_misses_the_silent() -> None:
    results = normalize({"web-01": "Linux web-01"}, [WEB, DB], 0.5)
    assert [(r.host, r.status, r.stdout) for r in results] == [
        ("web-01", "ok", "Linux web-01"),
        ("db-01", "unreachable", ""),
    ]
    assert results[1].stderr == "no return from this host"


def test_a_string_answer_fails_every_host_with_it() -> None:
    results = normalize("No hosts found", [WEB, DB], 0.1)
    assert {(r.status, r.stderr) for r in results} == {("failed", "No hosts found")}


def test_the_old_ansible_runner_answer_is_understood() -> None:
    answer = {
        "contacted": {"10.0.0.1": {"rc": 0, "stdout": "up", "stderr": ""}},
        "dark": {"10.0.0.2": {"failed": True, "msg": "SSH timeout"}},
    }
    web, db = normalize(answer, [WEB, DB], 1.0)
    assert (web.status, web.rc, web.stdout) == ("ok", 0, "up")
    assert (db.status, db.stderr) == ("unreachable", "SSH timeout")


def test_a_failed_return_code_or_false_fails_the_host() -> None:
    web, db = normalize(
        {"web-01": {"retcode": 2, "stdout": "", "stderr": "bad"}, "db-01": False}, [WEB, DB], 1.0
    )
    assert (web.status, web.rc, web.stderr) == ("failed", 2, "bad")
    assert (db.status, db.rc) == ("failed", 1)


def test_an_unexpected_answer_is_a_failure_not_a_crash() -> None:
    results = normalize(None, [WEB], 1.0)
    assert results[0].status == "failed" and "NoneType" in results[0].stderr
