"""A database outage under load, measured: what is lost, and how soon the record catches up.

A real daemon on a lab (the sshd targets by default, or the Salt minions) records
into a private MariaDB server of its own. Ten jobs print a line every half
second on two hosts each; once every job has lines in the record the server is
killed (SIGKILL), kept down for ``--outage`` seconds (30 by default) while the
jobs end, then started again. It prints:

* ``results_lost``: lines and host results the jobs printed or reached that the
  record does not hold once it caught up (goal: 0);
* ``recovery_s``: from the database answering again to the daemon's spool being
  empty, every kept write in the record;
* ``spooled_writes_peak``: the most writes the daemon held at once.

Run: ``.venv/bin/python bench/fault_recovery.py [--backend ansible|saltstack] [--outage S]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the lab lives in tests/

from tests.daemon_process import running_daemon  # noqa: E402
from tests.lab.fixtures import modules_folder  # noqa: E402
from tests.lab.mariadb import PrivateMariaDB, migrate  # noqa: E402
from tests.lab.procs import wait_for  # noqa: E402
from tests.lab.salt import SaltLab  # noqa: E402
from tests.lab.sshd import SshLab  # noqa: E402

LINES_MODULE = 9106
JOBS = 10
HOSTS_PER_JOB = 2
LONG = 600.0


def _rows(db: PrivateMariaDB, sql: str, *args: object) -> list[tuple]:
    with db.connect() as conn, conn.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def measure(backend: str, outage: float, lines: int) -> dict[str, float]:
    folder = Path(tempfile.mkdtemp(prefix="omserver-bench-faults-"))
    lab_type = SaltLab if backend == "saltstack" else SshLab
    with PrivateMariaDB() as db, lab_type() as lab:
        migrate(db.url)
        env = {
            **lab.settings(),
            "OMSERVER_DAEMON_MODULES_DIR": str(modules_folder(folder)),
            "OMSERVER_DAEMON_WORKERS": str(JOBS),
            "OMSERVER_DAEMON_LOG_LEVEL": "warning",
        }
        targets = [t.to_dict() for t in lab.targets][:HOSTS_PER_JOB]
        with running_daemon(folder / "var", env, database_url=db.url) as daemon:
            client = daemon.client("bench")
            params = {"lines": lines, "pause_ms": 500}
            jobs = [client.submit(LINES_MODULE, targets, params, timeout=LONG) for _ in range(JOBS)]
            marks = ",".join(map(str, jobs))
            wait_for(
                lambda: (
                    len(
                        _rows(
                            db,
                            f"SELECT DISTINCT job_id FROM jobs_joboutput WHERE job_id IN ({marks})",
                        )
                    )
                    == JOBS
                ),
                LONG,
                "every job printing into the record",
            )
            db.kill()
            peak = 0
            back_at = time.monotonic() + outage
            while time.monotonic() < back_at:
                peak = max(peak, client.ping()["health"]["spooled"])
                time.sleep(0.2)
            db.start()
            answering = time.monotonic()
            wait_for(lambda: client.ping()["health"]["spooled"] == 0, LONG, "the spool to empty")
            recovery = time.monotonic() - answering
            wait_for(
                lambda: (
                    not _rows(
                        db, f"SELECT id FROM jobs_job WHERE id IN ({marks}) AND finished_at IS NULL"
                    )
                ),
                LONG,
                "every job to end",
            )
        expected = "\n".join(f"line {n}" for n in range(1, lines + 1))
        steps = _rows(
            db,
            f"SELECT job_id, host, stdout FROM jobs_jobstep"
            f" WHERE job_id IN ({marks}) AND status='ok'",
        )
        ok_hosts = _rows(
            db, f"SELECT COUNT(*) FROM jobs_jobhost WHERE job_id IN ({marks}) AND status='ok'"
        )[0][0]
    kept_lines = sum(stdout.count("line ") for *_, stdout in steps if stdout == expected)
    lost = (JOBS * HOSTS_PER_JOB * lines - kept_lines) + (JOBS * HOSTS_PER_JOB - ok_hosts)
    return {"results_lost": lost, "recovery_s": recovery, "spooled_writes_peak": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ansible", "saltstack"], default="ansible")
    parser.add_argument("--outage", type=float, default=30.0, help="seconds the database is down")
    parser.add_argument("--lines", type=int, default=30, help="lines each host prints (0.5 s each)")
    args = parser.parse_args()
    for name, value in measure(args.backend, args.outage, args.lines).items():
        print(f"{name}={value:.3f}" if isinstance(value, float) else f"{name}={value}")


if __name__ == "__main__":
    main()
