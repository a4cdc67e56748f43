"""No enumeration: what lies outside a user's grants does not exist for them.

A request naming a host, module or job the user may not use is answered exactly
like one naming something that does not exist; every list (console tree, module
list, the job history's module filter, the API's lists) holds only what the
user's grants cover, and modules only when enabled, except for those who manage
modules. charlie has no grants, bob may run 1001 and 1003 on www.example.com
(and holds a grant of the disabled 2001), dave manages modules without any grant,
alice is a superuser.
"""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from omserverweb.access.models import Grant
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server
from omserverweb.jobs.models import Job
from omserverweb.modules.models import ModuleDefinition
from tests.conftest import WWW_HOSTS, logged_in

UNKNOWN_HOST = "nope-99"
FORBIDDEN_HOST = "bbs-01"
PLACEHOLDER = "NAME"


@pytest.fixture
def retired(bob, inventory) -> ModuleDefinition:
    """A disabled module bob holds a grant for, on his own category and on bbs."""
    module = ModuleDefinition.objects.create(id=2001, name="retired", enabled=False)
    group = bob.groups.get()
    Grant.objects.create(group=group, module=module, app_category=inventory.www)
    Grant.objects.create(group=group, module=module, app_category=inventory.bbs)
    return module


@pytest.fixture
def dave(inventory):
    """Manages modules (sees every one listed, disabled too) but holds no grant."""
    user = User.objects.create_user("dave", password="dave-password-1")
    user.user_permissions.add(Permission.objects.get(codename="change_moduledefinition"))
    return user


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def answer(response, name: object = None) -> tuple[int, str]:
    """Status and body, with the name the request used (a whole word) put out of the
    comparison."""
    body = response.content.decode()
    if name is not None:
        body = re.sub(rf"(?<![\w-]){re.escape(str(name))}(?![\w-])", PLACEHOLDER, body)
    return response.status_code, body


def run(user, module: object, servers: list[object]):
    body = {"module": module, "servers": [str(s) for s in servers]}
    return api_as(user).post("/api/jobs/", body, format="json")


# -- running: unknown and forbidden are told alike ----------------------------------------


@pytest.mark.parametrize("username", ["charlie", "bob"])
def test_an_unknown_host_and_a_forbidden_one_get_the_same_answer(
    request, inventory, username: str
) -> None:
    user = request.getfixturevalue(username)
    unknown = answer(run(user, 1003, [UNKNOWN_HOST]), UNKNOWN_HOST)
    forbidden = answer(run(user, 1003, [FORBIDDEN_HOST]), FORBIDDEN_HOST)
    assert unknown == forbidden
    assert unknown[0] == 400
    by_id = answer(run(user, 1003, [inventory.bbs_server.pk]), inventory.bbs_server.pk)
    assert by_id == answer(run(user, 1003, [999_999]), 999_999) == forbidden
    assert not Job.objects.exists()


def test_the_answer_names_unknown_and_forbidden_hosts_together(bob) -> None:
    response = run(bob, 1003, [WWW_HOSTS[0], UNKNOWN_HOST, FORBIDDEN_HOST])
    assert response.status_code == 400
    assert response.json() == {"servers": [f"unknown or not permitted: nope-99, {FORBIDDEN_HOST}"]}


@pytest.mark.parametrize("username", ["charlie", "bob"])
@pytest.mark.parametrize("module", [1004, 2001], ids=["not-granted", "disabled"])
def test_an_unknown_module_and_a_forbidden_or_disabled_one_get_the_same_answer(
    request, retired, username: str, module: int
) -> None:
    user = request.getfixturevalue(username)
    unknown = answer(run(user, 9999, list(WWW_HOSTS)), 9999)
    assert answer(run(user, module, list(WWW_HOSTS)), module) == unknown
    assert unknown == (400, f'{{"module":["unknown or not permitted: {PLACEHOLDER}"]}}')
    assert not Job.objects.exists()


@pytest.mark.parametrize("server", ["9" * 30, "²", "١٢"], ids=["huge", "superscript", "arabic"])
def test_a_server_id_no_database_could_hold_is_an_unknown_server(bob, server: str) -> None:
    assert answer(run(bob, 1003, [server]), server) == answer(
        run(bob, 1003, [UNKNOWN_HOST]), UNKNOWN_HOST
    )


def test_a_module_id_no_database_could_hold_is_an_unknown_module(bob) -> None:
    huge = 10**30
    assert answer(run(bob, huge, list(WWW_HOSTS)), huge) == answer(
        run(bob, 9999, list(WWW_HOSTS)), 9999
    )


def test_a_refusal_is_logged_with_its_reason_for_the_operator(bob, caplog) -> None:
    run(bob, 1003, [FORBIDDEN_HOST, "evil\nline"])
    assert "refused: user=bob module=1003 hosts=bbs-01,evil\\nline" in caplog.text


def test_a_rerun_on_a_host_revoked_or_gone_is_told_alike(bob, inventory) -> None:
    job = Job.objects.create(
        module_id=1003,
        requested_by="bob",
        client="web",
        targets=[WWW_HOSTS[0], FORBIDDEN_HOST, "gone-01"],
    )
    client = api_as(bob)
    gone = client.post(f"/api/jobs/{job.pk}/rerun/", {"hosts": ["gone-01"]}, format="json")
    revoked = client.post(f"/api/jobs/{job.pk}/rerun/", {"hosts": [FORBIDDEN_HOST]}, format="json")
    assert answer(gone, "gone-01") == answer(revoked, FORBIDDEN_HOST)
    assert gone.status_code == 400
    assert Job.objects.count() == 1


def test_a_rerun_of_a_module_disabled_since_is_told_like_an_unknown_one(bob, retired) -> None:
    job = Job.objects.create(
        module_id=2001, requested_by="bob", client="web", targets=[WWW_HOSTS[0]]
    )
    response = api_as(bob).post(f"/api/jobs/{job.pk}/rerun/", {}, format="json")
    assert response.status_code == 400
    assert response.json() == {"module": ["unknown or not permitted: 2001"]}


def test_those_who_see_a_module_are_told_it_is_disabled(alice, retired) -> None:
    response = run(alice, 2001, [WWW_HOSTS[0]])
    assert response.status_code == 400
    assert response.json() == {"module": ["module 2001 is disabled"]}
    unknown = run(alice, 1003, [UNKNOWN_HOST])
    assert unknown.json() == {"servers": ["unknown or not permitted: nope-99"]}


# -- jobs: one the user may not see is one that does not exist ----------------------------


@pytest.fixture
def alices_job(alice) -> Job:
    return Job.objects.create(
        module_id=1003, requested_by="alice", client="web", targets=[FORBIDDEN_HOST]
    )


@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "results/"), ("post", "cancel/"), ("post", "rerun/")],
)
def test_a_job_the_user_may_not_see_answers_like_a_missing_one(
    bob, alices_job, method: str, suffix: str
) -> None:
    missing = alices_job.pk + 1000
    client = api_as(bob)
    hidden = getattr(client, method)(f"/api/jobs/{alices_job.pk}/{suffix}", {}, format="json")
    absent = getattr(client, method)(f"/api/jobs/{missing}/{suffix}", {}, format="json")
    assert hidden.status_code == 404
    assert answer(hidden, alices_job.pk) == answer(absent, missing)


def test_a_job_page_the_user_may_not_see_answers_like_a_missing_one(bob, alices_job) -> None:
    missing = alices_job.pk + 1000
    web = logged_in(bob)
    hidden = web.get(f"/jobs/{alices_job.pk}/")
    assert hidden.status_code == 404
    assert answer(hidden, alices_job.pk) == answer(web.get(f"/jobs/{missing}/"), missing)


def test_filtering_jobs_by_a_forbidden_module_answers_like_an_unknown_one(bob, retired) -> None:
    client = api_as(bob)
    unknown = answer(client.get("/api/jobs/", {"module": 9999}))
    assert unknown[0] == 400
    for module in (1004, 2001):
        assert answer(client.get("/api/jobs/", {"module": module})) == unknown
    assert client.get("/api/jobs/", {"module": 1003}).status_code == 200


# -- lists hold only what the grants cover ------------------------------------------------


def filter_choices(user) -> set[int]:
    """The module ids the job history's module filter offers."""
    page = logged_in(user).get("/jobs/").content.decode()
    select = re.search(r'<select name="module"[^>]*>(.*?)</select>', page, re.S)
    assert select is not None
    return {int(v) for v in re.findall(r'<option value="(\d+)"', select.group(1))}


def module_page(user) -> set[int]:
    page = logged_in(user).get("/modules/").content.decode()
    return {int(v) for v in re.findall(r"<tr id=\"module-(\d+)\">", page)}


def api_list(user, name: str, key: str = "id") -> set:
    response = api_as(user).get(f"/api/{name}/", {"limit": 1000})
    assert response.status_code == 200
    return {row[key] for row in response.json()["results"]}


def console_tree(user) -> tuple[set[str], set[int]]:
    """The hostnames of the console's server tree, and the ids of its runnable modules."""
    html = logged_in(user).get("/").content.decode()
    start = html.index('<script id="console-data" type="application/json">') + 50
    data = json.loads(html[start : html.index("</script>", start)])
    hosts = {
        server["hostname"]
        for function in data["tree"]
        for app in function["apps"]
        for server in app["servers"]
    }
    return hosts, {m["id"] for m in data["modules"]}


def test_a_user_without_grants_is_listed_nothing(charlie, retired) -> None:
    assert filter_choices(charlie) == set()
    assert module_page(charlie) == set()
    assert console_tree(charlie) == (set(), set())
    for name in ("modules", "servers", "app-categories", "function-categories"):
        assert api_list(charlie, name) == set(), name


def test_a_narrow_grant_lists_its_enabled_modules_and_its_servers_only(bob, retired) -> None:
    """bob's grant of the disabled 2001 on bbs shows neither 2001 nor bbs."""
    assert filter_choices(bob) == {1001, 1003}
    assert module_page(bob) == {1001, 1003}
    assert console_tree(bob) == (set(WWW_HOSTS), {1001, 1003})
    assert api_list(bob, "modules") == {1001, 1003}
    assert api_list(bob, "servers", "hostname") == set(WWW_HOSTS)
    assert api_list(bob, "app-categories", "name") == {"www.example.com"}
    assert api_list(bob, "function-categories", "name") == {"Linux.Web"}


def test_enabling_a_granted_module_lists_it_and_its_servers(bob, retired) -> None:
    retired.enabled = True
    retired.save()
    assert filter_choices(bob) == {1001, 1003, 2001}
    assert console_tree(bob)[0] == {*WWW_HOSTS, FORBIDDEN_HOST}
    assert api_list(bob, "servers", "hostname") == {*WWW_HOSTS, FORBIDDEN_HOST}


def test_who_manages_modules_sees_every_module_but_no_server(dave, retired) -> None:
    every = set(ModuleDefinition.objects.values_list("pk", flat=True))
    assert 2001 in every
    assert filter_choices(dave) == every
    assert module_page(dave) == every
    assert api_list(dave, "modules") == every
    assert console_tree(dave) == (set(), set())
    assert api_list(dave, "servers") == set()


def test_a_superuser_sees_everything(alice, retired) -> None:
    every = set(ModuleDefinition.objects.values_list("pk", flat=True))
    assert filter_choices(alice) == every
    assert module_page(alice) == every
    assert api_list(alice, "modules") == every
    hosts = set(Server.objects.values_list("hostname", flat=True))
    assert console_tree(alice) == (hosts, every - {2001})
    assert api_list(alice, "servers", "hostname") == hosts
    categories = AppCategory.objects.values_list("pk", flat=True)
    assert api_list(alice, "app-categories") == set(categories)
    functions = FunctionCategory.objects.values_list("pk", flat=True)
    assert api_list(alice, "function-categories") == set(functions)
