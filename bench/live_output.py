"""Live output, measured: how soon a printed line can be read, and what streaming costs.

For each backend (the Salt lab's minions, then the sshd lab's targets) it prints:

* ``<backend>_live_line_latency_p50_s`` and ``…_p90_s``: a real daemon runs a
  module printing a line every half second on every host, each line carrying
  the moment it was printed; a reader follows the job through the REST API's
  ``jobs/<id>/results/`` (what the console polls) and notes when each line
  first becomes readable. Goal: p90 ≤ 2 s. The reader asks again at once, so
  this is the platform's delay; the console adds up to its 0.4 s poll;
* ``<backend>_step_overhead_vs_plain``: the same three-step module run as a job
  (a job process, as the daemon runs it) with ``modules.live_output`` on ÷
  off, the median of each round's ratio. Goal ≤ 1.15.

Everything records into a throwaway SQLite database in a temporary folder.
Run: ``.venv/bin/python bench/live_output.py [--rounds N] [--lines N]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the lab lives in tests/
FOLDER = Path(tempfile.mkdtemp(prefix="omserver-bench-live-"))
DATABASE_URL = f"sqlite:///{FOLDER / 'bench.sqlite3'}"  # the daemon records, the API reads
os.environ.update(
    OMSERVER_PATHS_DATA_DIR=str(FOLDER / "var"),
    OMSERVER_DATABASE_URL=DATABASE_URL,
    DJANGO_SETTINGS_MODULE="omserverweb.settings",
)

import django  # noqa: E402

django.setup()

from django.contrib.auth.models import User  # noqa: E402
from django.core.management import call_command  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from bench.backend_overhead import timed  # noqa: E402
from omserver.config import Config  # noqa: E402
from omserver.jobs import execution  # noqa: E402
from omserver.modules.registry import ModuleRegistry  # noqa: E402
from omserver.sdk import HostResult  # noqa: E402
from tests.daemon_process import running_daemon  # noqa: E402
from tests.lab.salt import SaltLab  # noqa: E402
from tests.lab.sshd import SshLab  # noqa: E402
from tests.records import approve  # noqa: E402

STAMPED_LINES = """NAME = "stamped lines"
CAPTION = "Print lines carrying the moment they were printed."
PARAMS = [{"name": "lines", "type": "int", "default": 20, "min": 1, "max": 1000}]
SCRIPT = 'i=1; while [ "$i" -le "$1" ]; do echo "$i $(date +%s.%N)"; sleep 0.5; i=$((i+1)); done'


def run(ctx, params):
    ctx.shell(SCRIPT, args=[params["lines"]])
"""
STAMPED = re.compile(r"^(\d+) (\d+\.\d{9})$", re.M)  # a whole line: number, print time
THREE_STEPS = """NAME = "three steps"
CAPTION = "Three short steps."


def run(ctx, params):
    ctx.cmd(["uname", "-r"])
    ctx.shell("seq 1 200")
    ctx.cmd(["sh", "-c", "echo done; echo also >&2"])
"""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def latencies(lab: SaltLab | SshLab, api: APIClient, lines: int) -> list[float]:
    """Seconds from each line's printing to the REST API first showing it."""
    env = {**lab.settings(), "OMSERVER_DAEMON_MODULES_DIR": str(FOLDER / "modules")}
    seen: dict[tuple[str, str], float] = {}
    data_dir = FOLDER / f"daemon-{lab.__class__.__name__}"
    with running_daemon(data_dir, env, database_url=DATABASE_URL) as daemon:
        targets = [t.to_dict() for t in lab.targets]
        with daemon.client() as client:
            job_id = client.submit(9201, targets, {"lines": lines}, timeout=lines + 60)
        cursor, status, live = 0, "queued", {}
        while status in ("queued", "running"):
            page = api.get(f"/api/jobs/{job_id}/results/?after={cursor}").data
            now = time.time()
            cursor, status = page["cursor"], page["status"]
            for chunk in page["output"]:
                live[chunk["host"]] = live.get(chunk["host"], "") + chunk["text"]
            for host, text in live.items():  # a last line's break waits for more text
                for number, printed in STAMPED.findall(text):
                    seen.setdefault((host, number), now - float(printed))
            if not page["more"]:
                time.sleep(0.02)
        if status != "succeeded" or len(seen) < len(targets) * lines * 0.9:
            raise SystemExit(f"the live run failed: {status}, {len(seen)} lines seen live")
    return list(seen.values())


def overhead(lab: SaltLab | SshLab, rounds: int) -> float:
    """A three-step job with live output on ÷ the same job with it off."""
    registry = ModuleRegistry(FOLDER / "modules", lab.settings()["OMSERVER_DAEMON_BACKEND"])
    module = registry.get(9202)

    def job(live: bool):
        config = Config({**lab.settings(), "OMSERVER_MODULES_LIVE_OUTPUT": str(live).lower()})

        def run() -> None:
            events = execution.execute(module, lab.targets, {}, config=config, timeout=120)
            results = [e for e in events if isinstance(e, HostResult)]
            if len(results) != 3 * len(lab.targets) or not all(r.ok for r in results):
                raise SystemExit(f"a three-step run failed: {results}")

        return run

    live, plain = job(True), job(False)
    ratios = []
    for _ in range(rounds):
        # Ready job processes are kept for one configuration (the daemon has one): an
        # untimed job first lets the pool settle on each side's before it is timed.
        pair = []
        for run in (live, plain):
            run()
            pair.append(timed(run))
        ratios.append(pair[0] / pair[1])
    return statistics.median(ratios)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="timed jobs per side")
    parser.add_argument("--lines", type=int, default=20, help="lines per host in the live run")
    args = parser.parse_args()
    modules = FOLDER / "modules" / "common"
    modules.mkdir(parents=True)
    (modules / "Mid_9201.py").write_text(STAMPED_LINES)
    (modules / "Mid_9202.py").write_text(THREE_STEPS)
    call_command("migrate", verbosity=0)
    approve(*ModuleRegistry(FOLDER / "modules", "ansible").all())  # reviewed: they are above
    api = APIClient(HTTP_HOST="localhost")
    api.force_authenticate(User.objects.create_superuser("bench", password="bench-password-1"))
    execution.warm_up()
    figures: dict[str, float] = {}
    for name, lab_class in (("saltstack", SaltLab), ("ansible", SshLab)):
        with lab_class() as lab:
            delays = latencies(lab, api, args.lines)
            figures[f"{name}_live_line_latency_p50_s"] = statistics.median(delays)
            figures[f"{name}_live_line_latency_p90_s"] = percentile(delays, 0.9)
            figures[f"{name}_step_overhead_vs_plain"] = overhead(lab, args.rounds)
    for name, value in figures.items():
        print(f"{name}={value:.3f}")


if __name__ == "__main__":
    main()
