"""The console in headless Chromium, against the live web app and a real daemon on Salt.

bob logs in through the form, picks servers and a module, runs it and follows
the job into the history; a step's lines show while it runs and its end
replaces them; host output, names and captions stay text; a 1 MiB output
leaves the page responsive; a stopped daemon is said plainly; the language
selector switches to Simplified Chinese and back.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    ConsoleMessage,
    Locator,
    Page,
    Response,
    expect,
    sync_playwright,
)

from omserver.config import BASE_DIR, Config
from tests.conftest import WWW_HOSTS
from tests.daemon_process import RunningDaemon, running_daemon
from tests.lab.runs import CLASSIC_MODULES, FIXTURE_MODULES
from tests.lab.salt import SaltLab
from tests.security_headers import problems

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 60_000  # generous: a loaded 2-core machine runs Salt, MariaDB and Chromium at once
SCREENSHOTS = BASE_DIR / "test-artifacts" / "screenshots"
PASSWORD = "bob-password-1"
PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
LOG_LINES = [f"lab log line {n:02d}: service {n % 3} ok" for n in range(1, 13)]
PREVIEW_CHARS = 64 * 1024  # results.js shows this much until "Expand"
STEPS_MODULE = 9996  # tests/fixtures_modules/common: runs the ctx steps given as JSON
LIVE_LINES = [f"live line {n}" for n in range(1, 7)]
THREE_STEPS = [
    ["cmd", [["echo", "first step"]], {}],
    ["shell", ['for n in 1 2 3 4 5 6; do echo "live line $n"; sleep 1; done'], {}],
    ["cmd", [["echo", "third step"]], {}],
]
THREE_ACTIONS = [
    "echo 'first step'",
    'sh: for n in 1 2 3 4 5 6; do echo "live line $n"; sleep 1; done',
    "echo 'third step'",
]


# -- the browser ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium for the module."""
    with pytest.MonkeyPatch.context() as patch:
        # Playwright's sync API keeps an asyncio loop running in this thread, so Django
        # takes every ORM call made here (fixtures, test bodies) for one from async
        # code and raises SynchronousOnlyOperation. Nothing here is async; the live
        # server answers from its own threads, where no loop runs.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            expect.set_options(timeout=TIMEOUT_MS)
            yield chromium
            chromium.close()


# Every Content-Security-Policy violation in any page of the context, told to the test.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => window.reportCspViolation(
  `${event.effectiveDirective} refused ${event.blockedURI || "inline code"}`
  + ` in ${event.documentURI} (${event.sourceFile}:${event.lineNumber})`));
"""


@pytest.fixture
def csp_violations() -> list[str]:
    """What the browser refused under the Content-Security-Policy during the test."""
    return []


@pytest.fixture
def page(browser: Browser, live_server, csp_violations: list[str]) -> Iterator[Page]:
    """A fresh browser context on the live server; fails the test on an uncaught JS error,
    on a page served without a Content-Security-Policy and on anything the policy refused."""
    context = browser.new_context(base_url=live_server.url, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    context.expose_function("reportCspViolation", lambda text: csp_violations.append(text))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    unprotected: list[str] = []

    def check_policy(response: Response) -> None:
        if response.request.resource_type == "document" and not response.headers.get(
            "content-security-policy"
        ):
            unprotected.append(response.url)

    def check_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:  # also what the event cannot tell
            csp_violations.append(message.text)

    context.on("response", check_policy)
    context.on("console", check_console)
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))
    yield tab
    context.close()
    assert errors == [], f"JavaScript errors on the page: {errors}"
    assert unprotected == [], f"pages without a Content-Security-Policy: {unprotected}"
    assert csp_violations == [], f"refused by the Content-Security-Policy: {csp_violations}"


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def log_in(page: Page, username: str = "bob", password: str = PASSWORD) -> None:
    """Through the login form, as a person would."""
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/"))
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("header .who")).to_have_text(username)


def pick(page: Page, category: str, module_id: int, **params: object) -> None:
    """Select a whole application category, then a module and its parameters."""
    page.locator("details.app", has_text=category).locator("summary input").check()
    page.locator("#module-picker").select_option(str(module_id))
    for name, value in params.items():
        page.locator(f"#param-form [name={name}]").fill(str(value))


def job_id_in_results(page: Page) -> int:
    return int(page.locator("#results .job-head a").inner_text().lstrip("#"))


def host_block(page: Page, host: str) -> Locator:
    name = page.locator("strong.host", has_text=re.compile(f"^{re.escape(host)}$"))
    return page.locator("#results article.host-result").filter(has=name)


def expect_host(page: Page, host: str, status: str, output: str) -> None:
    """The host's block shows ``status`` and one step that printed exactly ``output``."""
    block = host_block(page, host)
    expect(block.locator(".host-head .badge").first).to_have_text(status)
    expect(block.locator("details.step")).to_have_count(1)
    assert block.locator("details.step pre.output").text_content() == output


def new_job_url(page: Page, old: int) -> int:
    """Wait until the page moved to another job's page; its id."""
    expect(page).not_to_have_url(re.compile(rf"/jobs/{old}/$"))
    expect(page).to_have_url(re.compile(r"/jobs/\d+/$"))
    return int(re.search(r"/jobs/(\d+)/$", page.url).group(1))


def fact(page: Page, term: str) -> Locator:
    """The <dd> after the <dt> named ``term`` on a job page."""
    return page.locator(f"dl.facts dt:text-is('{term}') + dd")


def assert_nothing_ran(page: Page) -> None:
    """No injected element exists and no injected code ran."""
    assert page.locator("main img").count() == 0
    injected = (
        "[...document.scripts].filter(s => s.text.includes('__pwned')"
        " && s.type !== 'application/json').length"
    )
    assert page.evaluate(injected) == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


# -- a daemon whose module 1001 reads a log file the test writes ------------------------------


@pytest.fixture(scope="module")
def lab_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The file module 1001 reads on every lab host; each test writes what it needs."""
    return tmp_path_factory.mktemp("lab-log") / "system.log"


@pytest.fixture(scope="module")
def browser_daemon(
    salt_lab: SaltLab, tmp_path_factory: pytest.TempPathFactory, test_database_url: str, lab_log
) -> Iterator[RunningDaemon]:
    modules = tmp_path_factory.mktemp("browser-modules")  # the shipped ones and the steps module
    shutil.copytree(CLASSIC_MODULES / "common", modules / "common")
    shutil.copy(FIXTURE_MODULES / "common" / f"Mid_{STEPS_MODULE}.py", modules / "common")
    config = (
        f"[daemon]\nmodules_dir = {json.dumps(str(modules))}\n"
        f"[module.1001]\nlog_files = [{json.dumps(str(lab_log))}]\n"
    )
    env = {
        **salt_lab.settings(),
        "OMSERVER_DAEMON_NAME": "browser-tests",
        # A stopped minion is known after timeout + gather_job_timeout (~10 s here).
        "OMSERVER_SALT_TIMEOUT": "5",
        "OMSERVER_SALT_GATHER_JOB_TIMEOUT": "5",
    }
    folder = tmp_path_factory.mktemp("browser-daemon")
    (folder / "omserver.toml").write_text(config)
    env["OMSERVER_CONFIG"] = str(folder / "omserver.toml")
    with running_daemon(folder, env, database_url=test_database_url) as daemon:
        yield daemon


@pytest.fixture
def console_daemon(browser_daemon: RunningDaemon, settings, transactional_db) -> RunningDaemon:
    """Point the web console (the live server) at the browser tests' daemon."""
    settings.DAEMON_ADDRESS = browser_daemon.address
    settings.DAEMON_CLIENT_ID = "web"
    settings.DAEMON_CLIENT_KEY = browser_daemon.issued["web"]
    return browser_daemon


@pytest.fixture
def steps_module(bob, inventory) -> int:
    """The steps module defined in the web, and bob allowed to run it on www.example.com."""
    from omserverweb.access.models import Grant

    Grant.objects.create(group=bob.groups.get(), module_id=STEPS_MODULE, app_category=inventory.www)
    return STEPS_MODULE


@pytest.fixture
def second_minion_down(salt_lab: SaltLab) -> Iterator[Callable[[], None]]:
    """Stop lab-minion-2; the test calls the returned function to start it again."""
    host = WWW_HOSTS[1]
    salt_lab.stop_minion(host)
    up = False

    def start_again() -> None:
        nonlocal up
        salt_lab.start_minion(host)  # waits until it answers test.ping
        up = True

    yield start_again
    if not up:
        start_again()


# -- running a module from the console ---------------------------------------------------------


@pytest.mark.salt
def test_bob_runs_a_module_on_a_category_and_finds_it_in_the_history(
    page: Page, bob, console_daemon: RunningDaemon, lab_log: Path
) -> None:
    from omserverweb.jobs.models import Job

    lab_log.write_text("".join(f"{line}\n" for line in LOG_LINES))
    last_five = "\n".join(LOG_LINES[-5:])
    log_in(page)
    pick(page, "www.example.com", 1001, lines=5)
    expect(page.locator("#selected-count")).to_have_text("2 servers selected")
    expect(page.locator("#preview")).to_contain_text("lines=5")
    expect(page.locator("#preview")).to_contain_text(", ".join(WWW_HOSTS))
    screenshot(page, "console")

    page.get_by_role("button", name="Run", exact=True).dblclick()  # runs once
    expect(page.locator("#results .job-head .badge")).to_have_text("succeeded")
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    for host in WWW_HOSTS:
        expect_host(page, host, "ok", last_five)
    expect(page.locator("#results .summary")).to_contain_text("2 hosts: identical output")
    expect(page.locator("#run-error")).to_be_empty()
    screenshot(page, "console-run-finished")
    job_id = job_id_in_results(page)

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator("table.grid tbody tr").filter(
        has=page.get_by_role("link", name=str(job_id), exact=True)
    )
    expect(row).to_contain_text("succeeded")
    expect(row).to_contain_text("1001")
    expect(row.locator("td").nth(3)).to_have_text("bob")
    row.get_by_role("link", name=str(job_id), exact=True).click()

    expect(page).to_have_url(re.compile(rf"/jobs/{job_id}/$"))
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#cancel")).to_be_hidden()  # nothing left to cancel
    expect(fact(page, "Targets")).to_have_text(", ".join(WWW_HOSTS))
    expect(fact(page, "Parameters")).to_contain_text("lines=5")
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    for host in WWW_HOSTS:
        expect_host(page, host, "ok", last_five)
    screenshot(page, "job-page")
    assert list(Job.objects.values_list("pk", flat=True)) == [job_id]


@pytest.mark.salt
def test_a_host_that_fails_is_grouped_apart_and_re_run_alone(
    page: Page,
    bob,
    console_daemon: RunningDaemon,
    lab_log: Path,
    second_minion_down: Callable[[], None],
) -> None:
    from omserverweb.jobs.models import Job

    lab_log.write_text("".join(f"{line}\n" for line in LOG_LINES))
    last_five = "\n".join(LOG_LINES[-5:])
    up, down = WWW_HOSTS
    log_in(page)
    pick(page, "www.example.com", 1001, lines=5)
    page.get_by_role("button", name="Run", exact=True).click()

    expect(page.locator("#results .job-head .badge")).to_have_text("partial")
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    expect_host(page, up, "ok", last_five)
    expect(host_block(page, down).locator(".host-head .badge").first).to_have_text("unreachable")
    summary = page.locator("#results .summary")
    expect(summary.locator("p")).to_have_text("ok 1 host: identical output")
    expect(summary.locator("details.differs summary")).to_have_text(
        f"unreachable 1 host differs: {down}"
    )
    screenshot(page, "console-run-one-host-down")
    first = job_id_in_results(page)

    second_minion_down()  # the host is back: re-run where it failed, from the console
    page.get_by_role("button", name="Re-run on the failed or differing host").click()
    expect(page.locator("#results .job-head a")).not_to_have_text(f"#{first}")
    expect(page.locator("#results .job-head .badge")).to_have_text("succeeded")
    expect(page.locator("#results .progress-text")).to_have_text("1 of 1 host")
    expect(page.locator("#results article.host-result")).to_have_count(1)
    expect_host(page, down, "ok", last_five)
    assert Job.objects.get(pk=job_id_in_results(page)).targets == [down]

    # the same from the first job's page, through POST /api/jobs/<id>/rerun/
    page.goto(f"/jobs/{first}/")
    expect(page.locator("#job-status")).to_have_text("partial")
    page.get_by_role("button", name="Re-run on the failed or differing host").click()
    subset = new_job_url(page, first)
    expect(fact(page, "Targets")).to_have_text(down)
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect_host(page, down, "ok", last_five)
    assert Job.objects.get(pk=subset).targets == [down]

    page.goto(f"/jobs/{first}/")
    page.get_by_role("button", name="Re-run with the same parameters").click()
    again = new_job_url(page, first)
    expect(fact(page, "Targets")).to_have_text(", ".join(WWW_HOSTS))
    expect(fact(page, "Parameters")).to_contain_text("lines=5")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#results .summary p")).to_have_text("ok 2 hosts: identical output")
    for host in WWW_HOSTS:
        expect_host(page, host, "ok", last_five)
    job = Job.objects.get(pk=again)
    assert (job.targets, job.params, job.requested_by) == (list(WWW_HOSTS), {"lines": 5}, "bob")


@pytest.mark.salt
def test_a_one_mebibyte_output_per_host_leaves_the_page_responsive(
    page: Page, bob, console_daemon: RunningDaemon, lab_log: Path
) -> None:
    lines = [f"{n:05d} " + "x" * 97 for n in range(10_000)]  # 104 bytes a line with "\n"
    lab_log.write_text("".join(f"{line}\n" for line in lines))
    full = "\n".join(lines)
    assert 1_000_000 < len(full) < 1024 * 1024  # under modules.output_limit: nothing cut
    log_in(page)
    pick(page, "www.example.com", 1001, lines=10_000)
    page.get_by_role("button", name="Run", exact=True).click()

    expect(page.locator("#results .job-head .badge")).to_have_text("succeeded")
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    block = host_block(page, WWW_HOSTS[0])
    output = block.locator("pre.output")
    expect(output).to_have_class(re.compile(r"\bcollapsed\b"))
    assert output.text_content() == full[:PREVIEW_CHARS]
    expect(block.locator(".badge", has_text="truncated")).to_have_count(0)
    screenshot(page, "console-large-output")

    block.get_by_role("button", name="Expand").click()
    expect(block.get_by_role("button", name="Collapse")).to_be_visible()
    expect(output).not_to_have_class(re.compile(r"\bcollapsed\b"))
    assert output.evaluate("pre => pre.textContent.length") == len(full)
    assert output.text_content() == full
    # still responsive: the server search filters the tree at once
    page.locator("#server-search").fill(WWW_HOSTS[1])
    expect(page.locator("label.server", has_text=WWW_HOSTS[0])).to_be_hidden()
    expect(page.locator("label.server", has_text=WWW_HOSTS[1])).to_be_visible()
    block.get_by_role("button", name="Collapse").click()
    expect(output).to_have_class(re.compile(r"\bcollapsed\b"))


# -- steps and their live output -----------------------------------------------------------------


def assert_lines_once(output: Locator, lines: list[str]) -> None:
    """``output`` holds exactly ``lines``, each once (nothing shown live is left doubled)."""
    shown = output.text_content().strip("\n").split("\n")
    assert [shown.count(line) for line in lines] == [1] * len(lines)
    assert shown == lines


@pytest.mark.salt
def test_a_step_s_lines_show_while_it_runs_and_once_when_it_ends(
    page: Page, bob, console_daemon: RunningDaemon, steps_module: int
) -> None:
    log_in(page)
    pick(page, "www.example.com", steps_module, steps=json.dumps(THREE_STEPS))
    page.get_by_role("button", name="Run", exact=True).click()

    live = host_block(page, WWW_HOSTS[0]).locator("details.step").nth(1)
    output = live.locator("pre.output")
    for seen, not_yet in [(LIVE_LINES[0], LIVE_LINES[-1]), (LIVE_LINES[1], LIVE_LINES[-1])]:
        expect(output).to_contain_text(seen)
        # still running: the last line is not printed yet, no host is done
        assert not_yet not in output.text_content()
        assert page.locator("#results .job-head .badge").inner_text() == "running"
        assert page.locator("#results .progress-text").inner_text() == "0 of 2 hosts"
        assert live.locator("summary .badge").inner_text() == "running"
        assert live.evaluate("details => details.open")
    expect(live.locator("summary .action")).to_have_text(THREE_ACTIONS[1])
    screenshot(page, "console-live-step")

    expect(page.locator("#results .job-head .badge")).to_have_text("succeeded")
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    expect(page.locator("#results .summary p")).to_have_text("ok 2 hosts: identical output")
    job_id = job_id_in_results(page)
    page.goto(f"/jobs/{job_id}/")  # the record shows the same
    for host in WWW_HOSTS:
        steps = host_block(page, host).locator("details.step")
        expect(steps).to_have_count(3)
        expect(steps.locator("summary .action")).to_have_text(THREE_ACTIONS)
        expect(steps.locator("summary .badge")).to_have_text(["ok", "ok", "ok"])
        assert_lines_once(steps.nth(0).locator("pre.output"), ["first step"])
        assert_lines_once(steps.nth(1).locator("pre.output"), LIVE_LINES)
        assert_lines_once(steps.nth(2).locator("pre.output"), ["third step"])
        # the last step is open, the earlier ones that ended ok are folded
        assert steps.evaluate_all("all => all.map(step => step.open)") == [False, False, True]
    screenshot(page, "job-page-steps")


def test_live_output_is_appended_and_the_step_s_end_replaces_it(page: Page, bob) -> None:
    from omserver.sdk import HostResult
    from omserverweb.jobs import recorder
    from omserverweb.jobs.models import Job

    host = WWW_HOSTS[0]
    job = Job.objects.create(
        module_id=1001, requested_by="bob", client="web", targets=[host], status="running"
    )
    started = time.time()
    recorder.start_step(job.pk, 1, "sh: tail …", [host], started)
    recorder.save_output(job.pk, [(host, 1, "stdout", "line 1\n")])
    refused = []

    def refuse_twice(route) -> None:  # the server does not answer the first two polls
        if len(refused) < 2:
            refused.append(route.request.url)
            route.fulfill(status=503, body="")
        else:
            route.continue_()

    log_in(page)
    page.route(re.compile(r"/api/jobs/\d+/results/"), refuse_twice)
    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("#results .poll-trouble")).to_contain_text("trying again")
    step = host_block(page, host).locator("details.step")
    output = step.locator("pre.output")
    expect(output).to_contain_text("line 1")
    expect(page.locator("#results .poll-trouble")).to_be_hidden()
    expect(step.locator("summary .badge")).to_have_text("running")

    recorder.save_output(job.pk, [(host, 1, "stdout", "line 2\n"), (host, 1, "stderr", "warn\n")])
    expect(output.locator("span.stderr")).to_have_text("warn")
    assert output.text_content() == "line 1\nline 2\nwarn\n"
    many = "".join(f"more {n}\n" for n in range(200))
    recorder.save_output(job.pk, [(host, 1, "stdout", many)])
    expect(output).to_contain_text("more 199")  # and the reader, at the end, is kept there
    assert output.evaluate("pre => pre.scrollHeight - pre.scrollTop - pre.clientHeight < 2")
    output.evaluate("pre => { pre.scrollTop = 0; }")  # the reader scrolls up: left there
    recorder.save_output(job.pk, [(host, 1, "stdout", "after scrolling\n")])
    expect(output).to_contain_text("after scrolling")
    assert output.evaluate("pre => pre.scrollTop") == 0
    screenshot(page, "job-page-live-output")

    stdout = f"line 1\nline 2\n{many}after scrolling\nlast line"
    result = HostResult(host, "ok", 0, stdout, "warn", 2.5, step=1, action="sh: tail …")
    recorder.save_step(job.pk, result)
    expect(step.locator("summary .badge")).to_have_text("ok")
    expect(page.locator("#results .progress-text")).to_have_text("0 of 1 host")
    assert_lines_once(output, [*stdout.split("\n"), "warn"])
    recorder.finish_hosts(job.pk, [(host, "ok", "")])
    recorder.finish_job(job.pk, "succeeded")
    expect(page.locator("#job-status")).to_have_text("succeeded")
    expect(page.locator("#results .progress-text")).to_have_text("1 of 1 host")
    expect(page.locator("#results .summary p")).to_have_text("ok 1 host: identical output")
    expect(page.locator("#cancel")).to_be_hidden()


# -- what the page shows is text ---------------------------------------------------------------


def test_html_in_output_names_and_captions_is_shown_as_text(page: Page, bob, inventory) -> None:
    from omserverweb.jobs.models import Job, JobHost, JobOutput, JobStep
    from omserverweb.modules.models import ModuleDefinition

    inventory.www.name = f"www {PAYLOAD}"
    inventory.www.save()
    function = inventory.www.function
    function.name = f"Linux {PAYLOAD}"
    function.save()
    module = ModuleDefinition.objects.get(pk=1001)
    module.name = f"log {PAYLOAD}"
    module.caption = f"caption {PAYLOAD}"
    module.save()
    forged_host = '<img src=x onerror="window.__pwned=3">'  # no Server can be named so
    running_host = "lab-minion-3"
    job = Job.objects.create(
        module=module,
        requested_by="bob",
        client="web",
        targets=[*WWW_HOSTS, forged_host, running_host],
        params={"lines": PAYLOAD},
        status="partial",
        error=f"error {PAYLOAD}",
        last_seq=9,  # the rows below are written by hand: their sequence numbers are taken
    )
    outputs = {WWW_HOSTS[0]: f"one\n{PAYLOAD}", WWW_HOSTS[1]: f"one\n{PAYLOAD}", forged_host: "two"}
    for n, (host, stdout) in enumerate(outputs.items(), 1):
        ok = n < 3
        JobHost.objects.create(
            job=job,
            host=host,
            status="ok" if ok else "failed",
            rc=0 if ok else 1,
            error="" if ok else f"host error {PAYLOAD}",
            seq=2 * n,
        )
        JobStep.objects.create(
            job=job,
            host=host,
            number=1,
            action=f"sh: {PAYLOAD}",
            status="ok" if ok else "failed",
            rc=0 if ok else 1,
            stdout=stdout,
            stderr="" if ok else f"stderr {PAYLOAD}",
            seq=2 * n - 1,
        )
    # a step still running (as a job cut short leaves none), with what it printed live
    JobHost.objects.create(job=job, host=running_host, status="running", seq=7)
    JobStep.objects.create(job=job, host=running_host, number=1, status="running", seq=8)
    JobOutput.objects.create(
        job=job, host=running_host, step=1, stream="stderr", text=f"live {PAYLOAD}", seq=9
    )

    log_in(page)
    expect(page.locator("#tree details.function > summary")).to_have_text(f"Linux {PAYLOAD}")
    expect(page.locator("#tree details.app > summary")).to_contain_text(f"www {PAYLOAD}")
    page.locator("#module-picker").select_option("1001")
    expect(page.locator("#module-caption")).to_have_text(f"caption {PAYLOAD}")
    expect(page.locator("#module-caption")).to_be_visible()
    expect(page.locator("#module-picker option[value='1001']")).to_have_text(f"1001 log {PAYLOAD}")
    assert_nothing_ran(page)

    page.goto("/jobs/")
    expect(page.locator("table.grid tbody tr").first).to_contain_text(f"1001 log {PAYLOAD}")
    assert_nothing_ran(page)

    page.goto(f"/jobs/{job.pk}/")
    expect(page.locator("h1")).to_contain_text(f"log {PAYLOAD}")
    expect(fact(page, "Error")).to_have_text(f"error {PAYLOAD}")
    expect(fact(page, "Parameters")).to_contain_text(f"lines={PAYLOAD}")
    expect(fact(page, "Targets")).to_have_text(", ".join([*WWW_HOSTS, forged_host, running_host]))
    expect(page.locator("#results .progress-text")).to_have_text("3 of 4 hosts")
    first = host_block(page, WWW_HOSTS[0])
    expect(first.locator("pre.output")).to_have_text(f"one\n{PAYLOAD}")
    expect(first.locator("summary .action")).to_have_text(f"sh: {PAYLOAD}")
    forged = host_block(page, forged_host)
    expect(forged.locator("strong.host")).to_have_text(forged_host)
    expect(forged.locator(".host-error")).to_have_text(f"host error {PAYLOAD}")
    expect(forged.locator("pre.output")).to_have_text(f"two\nstderr {PAYLOAD}")
    live = host_block(page, running_host).locator("pre.output span.stderr")
    expect(live).to_have_text(f"live {PAYLOAD}")
    differs = page.locator("#results details.differs")
    expect(differs.locator("summary")).to_contain_text(f"1 host differs: {forged_host}")
    differs.locator("summary").click()
    expect(differs.locator("pre.diff")).to_contain_text(f"- {PAYLOAD}")
    expect(differs.locator("pre.diff")).to_contain_text(f"+ host error {PAYLOAD}")
    screenshot(page, "job-page-html-as-text")
    assert_nothing_ran(page)


# -- the daemon stopped ------------------------------------------------------------------------


def test_a_stopped_daemon_is_said_plainly_and_the_attempt_is_in_the_history(
    page: Page, bob, daemon_down: str
) -> None:
    reason = f"master-control daemon unreachable at {daemon_down}"
    log_in(page)
    pick(page, "www.example.com", 1003)
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run-error")).to_contain_text(reason)
    expect(page.locator("#results .job-head .badge")).to_have_text("failed")
    # Each host is recorded failed, with the reason as its error.
    expect(page.locator("#results .progress-text")).to_have_text("2 of 2 hosts")
    expect(page.locator("#results")).to_contain_text(reason)
    screenshot(page, "console-daemon-down")
    job_id = job_id_in_results(page)

    page.get_by_role("link", name="Jobs", exact=True).click()
    row = page.locator("table.grid tbody tr").first
    expect(row.get_by_role("link", name=str(job_id), exact=True)).to_be_visible()
    expect(row).to_contain_text("failed")
    row.get_by_role("link", name=str(job_id), exact=True).click()
    expect(page.locator("#job-status")).to_have_text("failed")
    expect(fact(page, "Error")).to_contain_text(reason)
    expect(fact(page, "Targets")).to_have_text(", ".join(WWW_HOSTS))


def test_a_run_on_more_hosts_than_the_threshold_asks_first(
    page: Page, bob, daemon_down: str, settings
) -> None:
    from omserverweb.jobs.models import Job

    settings.CONFIG = Config({**os.environ, "OMSERVER_WEB_CONFIRM_ABOVE_HOSTS": "1"})
    asked: list[str] = []
    log_in(page)
    pick(page, "www.example.com", 1003)
    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#run")).to_be_enabled()
    assert asked == ["Run 查看系统版本 View OS version on 2 hosts?"]
    assert not Job.objects.exists()  # said no: nothing ran, nothing recorded

    page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page.locator("#results .job-head .badge")).to_have_text("failed")  # daemon down
    assert len(asked) == 2
    assert Job.objects.get().targets == list(WWW_HOSTS)


# -- the audit page ----------------------------------------------------------------------------


def test_the_audit_page_shows_new_commands_live_and_once(page: Page, alice, inventory) -> None:
    from omserverweb.audit import ingest
    from omserverweb.audit.tokens import TokenCoverage

    def report(seq: int, command: str) -> None:
        event = {"host": "bbs-01", "user": "root", "command": command, "seq": seq}
        event["time"] = "2026-11-21T10:00:00Z"
        coverage = TokenCoverage(frozenset(["bbs-01"]))
        ingest.store(ingest.parse(json.dumps({"events": [event]}).encode(), coverage))

    report(1, "uptime")
    log_in(page, "alice", "alice-password-1")
    page.goto("/audit/")
    rows = page.locator("#events tr[data-id]")
    expect(page.locator("#events tr", has_text="uptime")).to_have_count(1)
    report(2, PAYLOAD)  # arrives while the page is open; shown as text
    expect(page.locator("#events tr", has_text=PAYLOAD)).to_have_count(1)
    page.wait_for_timeout(3500)  # another poll: the cursor trails, nothing is shown twice
    expect(rows).to_have_count(2)
    screenshot(page, "audit-live")
    assert_nothing_ran(page)


# -- languages ---------------------------------------------------------------------------------


def test_the_language_selector_switches_to_simplified_chinese_and_back(page: Page, bob) -> None:
    from omserverweb.jobs.models import Job, JobHost

    job = Job.objects.create(
        module_id=1001,
        requested_by="bob",
        client="web",
        targets=WWW_HOSTS,
        status="partial",
        last_seq=len(WWW_HOSTS),
    )
    for seq, (host, status) in enumerate(zip(WWW_HOSTS, ["ok", "unreachable"], strict=True), 1):
        JobHost.objects.create(job=job, host=host, status=status, seq=seq)
    log_in(page)
    language = page.get_by_label("Language")
    run = page.locator("#run")
    select_all = page.locator("details.app summary input")

    language.select_option("zh-hans")
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.get_by_role("link", name="控制台", exact=True)).to_be_visible()
    expect(run).to_have_text("执行")
    expect(select_all).to_have_attribute(
        "title", "选择此类别下的所有服务器"
    )  # from the JS catalogue
    screenshot(page, "console-zh-hans")
    page.get_by_role("link", name="任务", exact=True).click()
    expect(page.locator("h1")).to_have_text("任务历史")
    page.goto(f"/jobs/{job.pk}/")  # the statuses' labels come from the server
    expect(page.locator("#results .job-head .badge")).to_have_text("部分成功")
    expect(host_block(page, WWW_HOSTS[1]).locator(".host-head .badge").first).to_have_text("不可达")
    page.go_back()

    page.get_by_label("语言").select_option("en")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Job history")
    page.get_by_role("link", name="Console", exact=True).click()
    expect(run).to_have_text("Run")
    expect(select_all).to_have_attribute("title", "Select all servers of this category")


# -- the content security policy ---------------------------------------------------------------


def wait_for_violations(page: Page, violations: list[str], *directives: str) -> None:
    """Until the browser reported a refusal under each of ``directives``."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while not all(any(d in seen for seen in violations) for d in directives):
        assert time.monotonic() < deadline, f"no refusal under {directives}: {violations}"
        page.wait_for_timeout(100)


def visit(page: Page, path: str) -> None:
    """Open ``path``, check its headers and let everything it loads arrive."""
    response = page.goto(path)
    assert response is not None and response.status == 200, (path, response)
    assert problems(path, response.headers, response.text()) == []
    page.wait_for_load_state("networkidle")


@pytest.fixture
def finished_job(alice) -> int:
    from omserverweb.jobs.models import Job, JobHost, JobStep

    job = Job.objects.create(
        module_id=1001,
        requested_by="alice",
        client="web",
        targets=[WWW_HOSTS[0]],
        status="succeeded",
        last_seq=2,
    )
    JobHost.objects.create(job=job, host=WWW_HOSTS[0], status="ok", rc=0, seq=1)
    JobStep.objects.create(
        job=job, host=WWW_HOSTS[0], number=1, status="ok", rc=0, stdout="kept output", seq=2
    )
    return job.pk


def test_the_browser_refuses_inline_code_and_style_under_the_policy(
    page: Page, bob, csp_violations: list[str]
) -> None:
    log_in(page)
    page.evaluate(
        """() => {
          const script = document.createElement("script");
          script.textContent = "window.__inline = 1";
          document.body.append(script);
          document.body.insertAdjacentHTML("beforeend",
            '<button id="handler" onclick="window.__inline = 2">x</button>'
            + '<p id="styled" style="color: rgb(255, 0, 0)">x</p>');
          document.getElementById("handler").click();
        }"""
    )
    wait_for_violations(page, csp_violations, "script-src-elem", "script-src-attr", "style-src")
    assert page.evaluate("typeof window.__inline") == "undefined"
    assert page.locator("#styled").evaluate("p => getComputedStyle(p).color") != "rgb(255, 0, 0)"
    csp_violations.clear()  # refused as they must be: the page's own code ran without any


def test_console_admin_and_api_pages_work_without_a_violation(
    page: Page, alice, inventory, finished_job: int, daemon_down: str
) -> None:
    function = inventory.www.function.pk
    log_in(page, "alice", "alice-password-1")
    for path in (
        "/",
        "/jobs/",
        "/modules/",
        "/modules/add/",
        "/modules/1001/edit/",
        "/zones/",
        "/audit/",
        "/audit/verify/",
        "/audit/rules/",
        "/audit/rules/add/",
        "/audit/tokens/",
        "/inventory/import/",
        "/admin/",
        "/admin/inventory/server/",
        "/admin/auth/user/add/",
        "/api/",
        "/api/jobs/",
        f"/api/jobs/{finished_job}/",
    ):
        visit(page, path)

    visit(page, f"/jobs/{finished_job}/")  # the job's output, and its download
    block = host_block(page, WWW_HOSTS[0])
    expect(block.locator("pre.output")).to_have_text("kept output")
    with page.expect_download() as download:
        block.get_by_role("button", name="Download", exact=True).click()
    assert Path(download.value.path()).read_text() == "kept output"

    visit(page, "/api/docs/")  # Swagger UI, its start script loaded from a file
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("OMServer API")
    page.locator(".opblock-summary", has_text="/api/jobs/").first.click()
    expect(page.locator(".opblock-body").first).to_be_visible()

    visit(page, f"/admin/inventory/functioncategory/{function}/change/")  # inline rows
    rows = page.locator("tr.dynamic-app_categories")
    expect(rows).to_have_count(2)  # www and bbs
    page.get_by_role("button", name=re.compile("Add another")).click()
    expect(rows).to_have_count(3)

    visit(page, f"/admin/inventory/server/{inventory.bbs_server.pk}/change/")
    with page.expect_popup() as popup:  # a related object added in a popup window
        page.locator("#add_id_app_category").click()
    added = popup.value
    added.locator("#id_function").select_option(str(function))
    added.locator("#id_name").fill("shop.example.com")
    with added.expect_event("close"):  # the popup answers its opener and closes
        added.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("#id_app_category option:checked")).to_contain_text("shop.example.com")
