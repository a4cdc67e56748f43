"""Salt under load: a minion whose answers come late is not taken for a stopped one.

Issue 14: with 8 jobs at once, minions were reported ``unreachable`` while the
master's job cache held their returns. Here 8 steps run at once on the lab's
real salt-master and minions, with a ``gather_job_timeout`` short enough that
Salt's own rule (no find_job answer within it: gone) calls them gone; the test
then reads the master's job cache itself. A stopped minion is still
``unreachable``, and :func:`cached_results` reads a finished step back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

from omserver.backends import Backend, make_backend
from omserver.backends.saltstack import cached_results
from omserver.config import Config
from omserver.sdk import HostResult, Target
from omserver.sdk.steps import Command
from tests.lab.salt import SaltLab

pytestmark = pytest.mark.salt

JOBS = 8
FUNCTION = "omserver_stream.run"  # what a Command step with live output runs


@contextlib.contextmanager
def backend_in_thread(settings: dict[str, str]) -> Iterator[Backend]:
    """A backend for this thread: Salt's sync wrappers take the thread's event loop."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    backend = make_backend(Config(settings))
    try:
        yield backend
    finally:
        backend.close()
        asyncio.set_event_loop(None)
        loop.close()


@pytest.fixture
def backend(salt_lab: SaltLab) -> Iterator[Backend]:
    with backend_in_thread(salt_lab.settings()) as made:
        yield made


def run(
    backend: Backend,
    command: Command,
    hosts: list[str],
    *,
    timeout: float = 60,
    limit: int = 1024 * 1024,
    live: bool = True,
) -> tuple[dict[str, HostResult], list[tuple[str, list[str]]]]:
    """Each host's result, and the (jid, minions) of every publish (``on_publish``)."""
    results: dict[str, HostResult] = {}
    published: list[tuple[str, list[str]]] = []
    backend.on_publish = lambda jid, minions: published.append((jid, minions))
    backend.run(
        command,
        [Target(hostname=h, lan_ip="127.0.0.1") for h in hosts],
        timeout=timeout,
        output_limit=limit,
        emit=lambda r: results.setdefault(r.host, r),
        output=(lambda host, stream, text: None) if live else None,
    )
    assert sorted(results) == sorted(hosts)
    return results, published


def jobs_in_cache(salt_lab: SaltLab, marker: str) -> dict[str, str]:
    """Job number -> jid, from the loads in the master's job cache whose command holds
    ``marker`` (``<marker> <n>``): found by the test, not told by the backend."""
    client = salt_lab.client()
    listed = client.returners[f"{client.opts['master_job_cache']}.get_jids"]()
    found: dict[str, str] = {}
    for jid, info in listed.items():
        if info.get("Function") != FUNCTION:
            continue
        for argument in info.get("Arguments") or []:
            cmd = argument.get("cmd") if isinstance(argument, dict) else None
            if cmd and marker in cmd[-1]:
                found[cmd[-1].split()[-1]] = jid
    return found


def cache_returns(salt_lab: SaltLab, jid: str, minions: list[str], wait: float) -> set[str]:
    """The minions whose return for ``jid`` the job cache holds, given up to ``wait``
    seconds for the rest (a late return is what the test is after)."""
    client = salt_lab.client()
    give_up = time.monotonic() + wait
    while True:
        held = set(client.get_cache_returns(jid))
        if held.issuperset(minions) or time.monotonic() >= give_up:
            return held
        time.sleep(0.5)


def test_concurrent_steps_call_no_minion_unreachable_that_returned(salt_lab: SaltLab) -> None:
    """8 steps at once on every minion; Salt alone (find_job answer within 1 s, or
    gone) called most of these hosts unreachable."""
    settings = {**salt_lab.settings(), "OMSERVER_SALT_GATHER_JOB_TIMEOUT": "1"}
    marker = f"late-{uuid.uuid4().hex[:8]}"
    hosts = salt_lab.minion_ids
    outcome: dict[int, tuple[dict[str, HostResult], list[tuple[str, list[str]]]]] = {}
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            with backend_in_thread(settings) as backend:
                script = f"sleep 1.5; echo {marker} {n}"
                outcome[n] = run(backend, Command(("sh", "-c", script)), hosts)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(JOBS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(180)
    assert not errors, errors
    assert sorted(outcome) == list(range(JOBS))

    jids = jobs_in_cache(salt_lab, marker)
    assert sorted(jids, key=int) == [str(n) for n in range(JOBS)]
    answered_yet_unreachable = []
    for n, (results, _) in outcome.items():
        down = [h for h, r in results.items() if r.status == "unreachable"]
        if down:
            held = cache_returns(salt_lab, jids[str(n)], down, wait=30)
            answered_yet_unreachable += [(n, h, results[h].stderr) for h in down if h in held]
    assert answered_yet_unreachable == []
    for n, (results, published) in outcome.items():
        assert published == [(jids[str(n)], hosts)]  # on_publish told the same jid
        for host, result in results.items():
            assert (host, result.status, result.stdout) == (host, "ok", f"{marker} {n}")


def test_cached_results_give_the_live_result_of_a_finished_step(
    backend: Backend, salt_lab: SaltLab
) -> None:
    config = Config(salt_lab.settings())
    hosts = salt_lab.minion_ids
    failing = Command(("sh", "-c", 'echo "out $OMLAB_HOST"; echo err >&2; exit 3'))
    long = Command(("sh", "-c", "seq 1 3000; echo end"))
    for step, limit in ((failing, 1024 * 1024), (long, 1000)):
        for live in (True, False):  # our module, Salt's cmd.run_all
            results, published = run(backend, step, hosts, limit=limit, live=live)
            assert [minions for _, minions in published] == [hosts]
            cached = cached_results(config, step, published[0][0], [*hosts, "ghost"], limit)
            assert sorted(cached) == hosts  # no return from "ghost": absent
            for host, result in cached.items():
                fields = ("status", "rc", "stdout", "stderr", "truncated")
                assert [getattr(result, f) for f in fields] == [
                    getattr(results[host], f) for f in fields
                ]
                if step is failing:
                    assert (result.status, result.stdout) == ("failed", f"out {host}")
                else:
                    assert result.truncated and len(result.stdout.encode()) <= limit


def test_a_stopped_minion_is_still_unreachable(backend: Backend, salt_lab: SaltLab) -> None:
    down, *up = salt_lab.minion_ids
    salt_lab.stop_minion(down)
    try:
        started = time.monotonic()
        results, _ = run(backend, Command(("echo", "alive")), salt_lab.minion_ids, timeout=30)
        mixed = time.monotonic() - started
        started = time.monotonic()
        alone, _ = run(backend, Command(("echo", "alive")), [down], timeout=30)
        single = time.monotonic() - started
    finally:
        salt_lab.start_minion(down)
    for result in (results[down], alone[down]):
        assert result.status == "unreachable"
        assert "stopped or disconnected" in result.stderr
    for host in up:
        assert (results[host].status, results[host].stdout) == ("ok", "alive")
    # known well before the step's 30 s: check_after 1 s, then twice gather_job_timeout 2 s
    assert mixed < 15 and single < 15


def test_minions_that_keep_printing_are_not_asked_whether_they_still_run(
    salt_lab: SaltLab,
) -> None:
    """10 steps at once print a line every half second for 8 s: their output shows
    the minions at work, so no job asks them ``find_job`` again and again. (Each
    question forks a process on a minion already running 10 steps: asked every
    ``gather_job_timeout`` by every job, they fell behind and were called gone
    after 6 or 7 lines.)"""
    hosts = salt_lab.minion_ids
    outcome: dict[int, tuple[dict[str, HostResult], list[tuple[str, list[str]]]]] = {}
    errors: list[BaseException] = []

    def job(n: int) -> None:
        try:
            with backend_in_thread(salt_lab.settings()) as backend:
                script = f"for i in $(seq 16); do echo {n}.$i; sleep 0.5; done"
                outcome[n] = run(backend, Command(("sh", "-c", script)), hosts, timeout=600)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(900)
    assert not errors, errors
    for n, (results, _) in outcome.items():
        for host, result in results.items():
            expected = "\n".join(f"{n}.{i}" for i in range(1, 17))
            assert (host, result.status, result.stdout) == (host, "ok", expected)
