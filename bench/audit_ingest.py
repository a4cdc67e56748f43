"""Audit ingest throughput through the real HTTP path; prints ``name=value`` lines.

    .venv/bin/python bench/audit_ingest.py [--events N] [--batch 500] [--processes 4]

events_per_s   command events stored per second: batches POSTed to
               /api/audit/events/ on uWSGI, stored in MariaDB (goal >= 5,000)
events_lost    events sent minus rows found in the database afterwards (must be 0)
chain_ok       1 when every bench host's hash chain verifies afterwards

The script makes its own database and user (sql/create_database.py, through the
administrator account in $OMSERVER_TEST_MYSQL_ADMIN_URL, default root on
127.0.0.1), migrates it, registers one application category of bench hosts with a
group ingest token, starts uWSGI on a free port and sends from one thread per
host, so that batches of different hosts run in parallel and batches of one host
queue on its chain head, as they would in production.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
URL_FILE = BASE_DIR / "var" / "bench-database.url"


def database_url() -> str:
    subprocess.run(
        [
            sys.executable,
            str(BASE_DIR / "sql" / "create_database.py"),
            "--admin-url",
            os.environ.get("OMSERVER_TEST_MYSQL_ADMIN_URL", "mysql://root@127.0.0.1:3306/"),
            "--name",
            "omserver_bench",
            "--user",
            "omserver_bench",
            "--secret-file",
            str(URL_FILE),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return URL_FILE.read_text().strip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(hosts: list[str]) -> str:
    """Migrate, reset the bench hosts' events, and issue a token for their category."""
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    from omserverweb.audit import tokens
    from omserverweb.audit.chain import host_scope
    from omserverweb.audit.models import ChainHead, CommandEvent, IngestToken
    from omserverweb.inventory.models import AppCategory, FunctionCategory, Server

    CommandEvent.objects.filter(host__in=hosts).delete()
    ChainHead.objects.filter(scope__in=[host_scope(h) for h in hosts]).delete()
    function, _ = FunctionCategory.objects.get_or_create(name="Bench")
    category, _ = AppCategory.objects.get_or_create(function=function, name="bench.example.com")
    for n, host in enumerate(hosts):
        Server.objects.get_or_create(
            hostname=host, defaults={"lan_ip": f"10.255.0.{n + 1}", "app_category": category}
        )
    IngestToken.objects.filter(app_category=category).delete()
    return tokens.issue("bench", "bench", app_category=category)[1]


def bodies(host: str, batches: int, size: int) -> list[bytes]:
    start = datetime.now(UTC) - timedelta(minutes=5)
    out = []
    for b in range(batches):
        events = [
            {
                "host": host,
                "user": "root",
                "source": "10.0.0.1",
                "cwd": "/root",
                "command": f"systemctl status nginx --no-pager -n {b * size + i}",
                "time": (start + timedelta(microseconds=b * size + i)).isoformat(),
                "seq": b * size + i + 1,
            }
            for i in range(size)
        ]
        out.append(json.dumps({"events": events}).encode())
    return out


def sender(port: int, token: str, payloads: list[bytes], failures: list[str]) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    for body in payloads:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.request("POST", "/api/audit/events/", body, headers)
        reply = connection.getresponse()
        answer = reply.read()
        connection.close()
        if reply.status != 200:
            failures.append(f"{reply.status} {answer[:200]!r}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="omserver-bench-") as tmp:
        os.environ["OMSERVER_DATABASE_URL"] = database_url()
        os.environ["OMSERVER_PATHS_DATA_DIR"] = str(Path(tmp) / "var")
        os.environ.pop("OMSERVER_CONFIG", None)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "omserverweb.settings")
        sys.path.insert(0, str(BASE_DIR))
        hosts = [f"bench-{n:02d}" for n in range(args.hosts)]
        token = prepare(hosts)
        per_host = max(1, args.events // args.batch // args.hosts)
        payloads = {h: bodies(h, per_host, args.batch) for h in hosts}
        sent = per_host * args.batch * len(hosts)

        port = free_port()
        log = (Path(tmp) / "uwsgi.log").open("wb")
        uwsgi = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("uwsgi")),
                "--http-socket",
                f"127.0.0.1:{port}",
                "--module",
                "omserverweb.wsgi:application",
                "--chdir",
                str(BASE_DIR),
                "--master",
                # Each worker loads the app itself: wsgi.py's start-up checks open a
                # database connection that forked workers must not share.
                "--lazy-apps",
                "--processes",
                str(args.processes),
                "--disable-logging",
                "--die-on-term",
                "--need-app",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("uWSGI did not start") from None
                    time.sleep(0.1)
            # Warm every worker (imports, DB connection, token cache) outside the timing.
            warm = bodies(hosts[0], 1, 1)[0].replace(b'"seq": 1', b'"seq": 999999999')
            warm_fail: list[str] = []
            sender(port, token, [warm] * args.processes * 2, warm_fail)
            failures: list[str] = []
            threads = [
                threading.Thread(target=sender, args=(port, token, payloads[h], failures))
                for h in hosts
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
        finally:
            uwsgi.terminate()
            uwsgi.wait(30)
            log.close()

        from omserverweb.audit.models import CommandEvent
        from omserverweb.audit.services import verify_events

        stored = CommandEvent.objects.filter(host__in=hosts, seq__lt=999999999).count()
        chain_ok = verify_events(hosts) == []
        for failure in (warm_fail + failures)[:5]:
            print("failure:", failure, file=sys.stderr)
        if warm_fail or failures:
            print((Path(tmp) / "uwsgi.log").read_text()[-3000:], file=sys.stderr)
        print(f"events_sent={sent}")
        print(f"batch_size={args.batch}")
        print(f"uwsgi_processes={args.processes}")
        print(f"seconds={elapsed:.2f}")
        print(f"events_per_s={sent / elapsed:.0f}")
        print(f"events_lost={sent - stored}")
        print(f"chain_ok={int(chain_ok)}")


if __name__ == "__main__":
    main()
