"""The REST API: every endpoint, its 401 and 403, runs through the real daemon."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from omserverweb.apitokens import services as api_tokens
from omserverweb.inventory.models import AppCategory, Server
from omserverweb.jobs.models import Job, JobHost, JobOutput, JobStep
from omserverweb.modules.models import ModuleDefinition
from tests.conftest import WWW_HOSTS

LISTS = ["function-categories", "app-categories", "servers", "modules", "jobs"]


def api_as(user=None, token: bool = False) -> APIClient:
    client = APIClient()
    if user is not None and token:
        client.credentials(HTTP_AUTHORIZATION=f"Token {api_tokens.issue(user, 'tests')[1]}")
    elif user is not None:
        client.force_authenticate(user)
    return client


def finished(client: APIClient, job_id: int) -> dict:
    from tests.lab.procs import wait_for

    wait_for(
        lambda: client.get(f"/api/jobs/{job_id}/").data["status"] not in {"queued", "running"},
        60,
        f"job {job_id}",
    )
    return client.get(f"/api/jobs/{job_id}/").data


# -- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [*LISTS, "schema"])
def test_anonymous_calls_get_401(db, name: str) -> None:
    response = api_as().get(f"/api/{name}/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_a_wrong_token_gets_401(db) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get("/api/servers/").status_code == 401


def test_a_token_authenticates(bob) -> None:
    response = api_as(bob, token=True).get("/api/servers/")
    assert response.status_code == 200
    assert {s["hostname"] for s in response.data["results"]} == set(WWW_HOSTS)


def test_the_openapi_schema_and_docs_are_served(bob) -> None:
    client = api_as(bob)
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert "/api/jobs/{id}/cancel/" in schema.json()["paths"]
    web = api_as(bob)
    web.force_login(bob)
    docs = web.get("/api/docs/")
    assert docs.status_code == 200
    assert b"swagger-ui" in docs.content


# -- what each user sees ------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
def test_a_user_without_grants_sees_nothing(charlie, alice, name: str) -> None:
    Job.objects.create(module_id=1003, requested_by="alice", client="web", targets=["bbs-01"])
    response = api_as(charlie).get(f"/api/{name}/")
    assert response.status_code == 200
    assert response.data["results"] == []


def test_grants_limit_what_servers_and_modules_a_user_sees(bob, inventory) -> None:
    client = api_as(bob)
    assert {m["id"] for m in client.get("/api/modules/").data["results"]} == {1001, 1003}
    assert [c["name"] for c in client.get("/api/app-categories/").data["results"]] == [
        "www.example.com"
    ]
    assert client.get(f"/api/servers/{inventory.bbs_server.pk}/").status_code == 404


def test_a_superuser_sees_everything(alice) -> None:
    assert api_as(alice).get("/api/servers/").data["count"] == 3
    assert api_as(alice).get("/api/modules/").data["count"] == ModuleDefinition.objects.count()


def test_users_see_their_own_jobs_and_operators_all(bob, alice, charlie) -> None:
    mine = Job.objects.create(module_id=1003, requested_by="bob", client="web", targets=[])
    Job.objects.create(module_id=1003, requested_by="charlie", client="web", targets=[])
    assert [j["id"] for j in api_as(bob).get("/api/jobs/").data["results"]] == [mine.pk]
    assert api_as(alice).get("/api/jobs/").data["count"] == 2
    assert api_as(charlie).get(f"/api/jobs/{mine.pk}/").status_code == 404


def test_job_filters(alice, inventory) -> None:
    job = Job.objects.create(
        module_id=1003, requested_by="bob", client="web", targets=["lab-minion-1"], status="failed"
    )
    JobHost.objects.create(job=job, host="lab-minion-1", status="failed", seq=1)
    Job.objects.create(module_id=1001, requested_by="alice", client="web", targets=[])
    client = api_as(alice)
    for query in ("status=failed", "module=1003", "user=bob", "host=lab-minion-1"):
        assert [j["id"] for j in client.get(f"/api/jobs/?{query}").data["results"]] == [job.pk]
    today = job.created_at.date().isoformat()
    assert len(client.get(f"/api/jobs/?date_from={today}&date_to={today}").data["results"]) == 2
    assert client.get("/api/jobs/?date_to=2000-01-01").data["results"] == []


@pytest.mark.parametrize("name", LISTS)
def test_a_limit_past_what_the_database_holds_is_the_largest_page(alice, name) -> None:
    response = api_as(alice).get(f"/api/{name}/?limit={'9' * 24}")
    assert response.status_code == 200
    assert len(response.data["results"]) == response.data["count"]


@pytest.mark.parametrize("query", ["module=abc", "status=sleeping", "date_from=yesterday"])
def test_a_bad_job_filter_is_a_400_naming_it(alice, query) -> None:
    response = api_as(alice).get(f"/api/jobs/?{query}")
    assert response.status_code == 400
    assert query.split("=")[0] in response.data


def test_deleting_what_is_still_in_use_is_a_409_and_deletes_nothing(alice, inventory) -> None:
    client = api_as(alice)
    response = client.delete(f"/api/app-categories/{inventory.www.pk}/")
    assert response.status_code == 409
    assert response.data["detail"].startswith("still in use by 2 records: ")
    function = inventory.www.function_id
    assert client.delete(f"/api/function-categories/{function}/").status_code == 409
    Job.objects.create(module_id=1003, requested_by="alice", client="web", targets=[])
    response = client.delete("/api/modules/1003/")
    assert response.status_code == 409
    assert response.data["detail"].startswith("still in use by 1 record: ")
    assert AppCategory.objects.filter(pk=inventory.www.pk).exists()
    assert ModuleDefinition.objects.filter(pk=1003).exists()


# -- writes need model permissions ----------------------------------------------------------


def test_inventory_writes_need_model_permissions(bob, alice, inventory) -> None:
    new = {"hostname": "www-03", "lan_ip": "127.0.2.3", "app_category": inventory.www.pk}
    assert api_as(bob).post("/api/servers/", new).status_code == 403
    assert api_as(alice).post("/api/servers/", new).status_code == 201
    assert Server.objects.filter(hostname="www-03").exists()
    duplicate = {**new, "hostname": "www-04"}
    refused = api_as(alice).post("/api/servers/", duplicate)
    assert refused.status_code == 400
    assert "lan_ip" in refused.data


def test_module_writes_need_model_permissions(bob, alice) -> None:
    module = {
        "id": 2001,
        "name": "uptime",
        "caption": "",
        "backends": ["saltstack"],
        "params_schema": [],
    }
    assert api_as(bob).post("/api/modules/", module, format="json").status_code == 403
    assert api_as(alice).post("/api/modules/", module, format="json").status_code == 201


# -- running jobs -----------------------------------------------------------------------------


def test_running_where_no_grant_allows_is_refused_like_an_unknown_host_and_logged(
    bob, inventory, caplog
) -> None:
    response = api_as(bob).post(
        "/api/jobs/", {"module": 1003, "servers": ["bbs-01"]}, format="json"
    )
    assert response.status_code == 400
    assert response.data["servers"] == ["unknown or not permitted: bbs-01"]
    assert not Job.objects.exists()
    assert "refused: user=bob module=1003 hosts=bbs-01" in caplog.text


def test_a_module_without_a_grant_is_refused_like_an_unknown_one(bob) -> None:
    response = api_as(bob).post(
        "/api/jobs/", {"module": 1004, "servers": list(WWW_HOSTS)}, format="json"
    )
    assert response.status_code == 400
    assert response.data["module"] == ["unknown or not permitted: 1004"]


def test_parameters_are_validated_on_the_server_naming_the_field(bob) -> None:
    response = api_as(bob).post(
        "/api/jobs/",
        {"module": 1001, "servers": [WWW_HOSTS[0]], "params": {"lines": "5; touch /tmp/x"}},
        format="json",
    )
    assert response.status_code == 400
    assert "params.lines" in response.data
    assert not Job.objects.exists()


@pytest.mark.parametrize("depth", [100, 1_000, 100_000])
def test_a_body_nested_too_deep_is_a_400_and_runs_nothing(bob, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = f'{{"module": 1001, "servers": ["{WWW_HOSTS[0]}"], "params": {{"lines": {nested}}}}}'
    response = api_as(bob).post("/api/jobs/", body, content_type="application/json")
    assert response.status_code == 400
    assert not Job.objects.exists()


def test_unknown_servers_are_named(bob) -> None:
    response = api_as(bob).post(
        "/api/jobs/", {"module": 1003, "servers": ["nope-1"]}, format="json"
    )
    assert response.status_code == 400
    assert "nope-1" in str(response.data["servers"])


def test_running_is_a_post_never_a_get(bob) -> None:
    assert api_as(bob).get("/api/jobs/", {"module": 1003}).status_code == 200
    assert not Job.objects.exists()


def test_session_calls_need_the_csrf_token(bob) -> None:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(bob)
    response = client.post("/api/jobs/", {"module": 1003, "servers": [WWW_HOSTS[0]]}, format="json")
    assert response.status_code == 403
    assert "CSRF" in str(response.data)


def test_daemon_down_records_a_failed_job_with_a_plain_reason(bob, daemon_down) -> None:
    response = api_as(bob).post(
        "/api/jobs/", {"module": 1003, "servers": list(WWW_HOSTS)}, format="json"
    )
    assert response.status_code == 201
    assert response.data["status"] == "failed"
    assert f"master-control daemon unreachable at {daemon_down}" in response.data["error"]
    job = Job.objects.get(pk=response.data["id"])
    assert (job.status, job.requested_by, job.client) == ("failed", "bob", "web")
    assert job.targets == list(WWW_HOSTS)


@pytest.mark.salt
def test_run_through_the_daemon_records_each_host(bob, web_daemon) -> None:
    client = api_as(bob)
    response = client.post(
        "/api/jobs/", {"module": 1003, "servers": list(WWW_HOSTS)}, format="json"
    )
    assert response.status_code == 201, response.data
    job = finished(client, response.data["id"])
    assert job["status"] == "succeeded"
    assert job["requested_by"] == "bob"
    assert job["client"] == "web"
    assert sorted(r["host"] for r in job["results"]) == sorted(WWW_HOSTS)
    results = client.get(f"/api/jobs/{job['id']}/results/?after=0").data
    assert (results["total"], results["finished"]) == (2, 2)
    assert len(results["results"]) == 2
    assert [(s["number"], s["status"]) for s in results["steps"]] == [(1, "ok"), (1, "ok")]
    later = client.get(f"/api/jobs/{job['id']}/results/?after={results['cursor']}").data
    assert (later["results"], later["steps"], later["output"]) == ([], [], [])


@pytest.mark.salt
def test_rerun_on_a_subset_and_cancel(bob, charlie, web_daemon) -> None:
    client = api_as(bob)
    first = client.post(
        "/api/jobs/", {"module": 1003, "servers": list(WWW_HOSTS)}, format="json"
    ).data
    finished(client, first["id"])
    again = client.post(f"/api/jobs/{first['id']}/rerun/", {"hosts": [WWW_HOSTS[1]]}, format="json")
    assert again.status_code == 201
    assert finished(client, again.data["id"])["targets"] == [WWW_HOSTS[1]]
    outsider = client.post(f"/api/jobs/{first['id']}/rerun/", {"hosts": ["bbs-01"]}, format="json")
    assert outsider.status_code == 400
    assert api_as(charlie).post(f"/api/jobs/{first['id']}/cancel/").status_code == 404
    done = client.post(f"/api/jobs/{first['id']}/cancel/")
    assert done.status_code == 202
    assert done.data["status"] == "succeeded"  # a finished job stays as it ended


def test_a_rerun_asks_again_for_secrets_it_never_stored(alice, inventory) -> None:
    ModuleDefinition.objects.create(
        id=2003,
        name="with secret",
        params_schema=[{"name": "token", "type": "str", "sensitive": True}],
    )
    job = Job.objects.create(
        module_id=2003,
        requested_by="alice",
        client="web",
        targets=[WWW_HOSTS[0]],
        params={"token": "********"},
    )
    response = api_as(alice).post(f"/api/jobs/{job.pk}/rerun/", {}, format="json")
    assert response.status_code == 400
    assert "token" in str(response.data["params"])


def test_results_come_in_pages_with_a_flag_to_ask_again(alice, inventory) -> None:
    job = Job.objects.create(
        module_id=1003, requested_by="alice", client="web", targets=[], last_seq=60
    )
    JobHost.objects.bulk_create(
        JobHost(job=job, host=f"h{n:02d}", status="ok", seq=n) for n in range(1, 62)
    )
    client = api_as(alice)
    first = client.get(f"/api/jobs/{job.pk}/results/?after=0").data
    assert (len(first["results"]), first["more"]) == (50, True)
    rest = client.get(f"/api/jobs/{job.pk}/results/?after={first['cursor']}").data
    assert (len(rest["results"]), rest["more"]) == (10, False)
    assert [r["seq"] for r in first["results"] + rest["results"]] == list(range(1, 61))
    assert rest["cursor"] == 60  # row 61 is past the job's committed last_seq: not yet


def test_a_page_cut_in_one_kind_of_row_holds_back_the_later_rows_of_the_others(
    alice, inventory
) -> None:
    """Hosts, steps and live output share one sequence: a page cut after the 500th
    piece of output must not hand over a step row written after piece 501."""
    job = Job.objects.create(
        module_id=1003, requested_by="alice", client="web", targets=["h"], last_seq=700
    )
    JobHost.objects.create(job=job, host="h", status="running", seq=1)
    JobStep.objects.create(job=job, host="h", number=1, status="running", seq=2)
    JobOutput.objects.bulk_create(
        JobOutput(job=job, host="h", step=1, stream="stdout", text=f"{n}\n", seq=2 + n)
        for n in range(1, 601)
    )
    JobStep.objects.create(job=job, host="h", number=2, status="running", seq=700)
    client = api_as(alice)
    seen, after, pages = [], 0, 0
    while True:
        page = client.get(f"/api/jobs/{job.pk}/results/?after={after}").data
        pages += 1
        seen += [row["seq"] for key in ("results", "steps", "output") for row in page[key]]
        after = page["cursor"]
        if not page["more"]:
            break
    assert pages == 2
    assert sorted(seen) == [1, 2, *range(3, 603), 700]
    assert len(seen) == len(set(seen))


def test_a_rerun_on_a_host_no_longer_in_the_inventory_is_a_400(bob, inventory) -> None:
    job = Job.objects.create(
        module_id=1003, requested_by="bob", client="web", targets=[WWW_HOSTS[0], "gone-01"]
    )
    response = api_as(bob).post(f"/api/jobs/{job.pk}/rerun/", {}, format="json")
    assert response.status_code == 400
    assert response.data["hosts"] == ["unknown or not permitted: gone-01"]
    assert Job.objects.count() == 1


# -- every endpoint and method: 401 without credentials, 403/404 without rights ----------


def endpoints(inventory, job: Job) -> dict[str, str]:
    """One list and one object of each resource (the object's URL by its list's name)."""
    return {
        "function-categories": f"/api/function-categories/{inventory.www.function_id}/",
        "app-categories": f"/api/app-categories/{inventory.www.pk}/",
        "servers": f"/api/servers/{inventory.www_servers[0].pk}/",
        "modules": "/api/modules/1003/",
        "jobs": f"/api/jobs/{job.pk}/",
    }


@pytest.fixture
def bobs_job(bob) -> Job:
    return Job.objects.create(
        module_id=1003, requested_by="bob", client="web", targets=[WWW_HOSTS[0]], status="running"
    )


def test_every_endpoint_and_method_needs_credentials(inventory, bobs_job) -> None:
    anonymous = api_as()
    for name, item in endpoints(inventory, bobs_job).items():
        calls = [("get", f"/api/{name}/"), ("post", f"/api/{name}/"), ("get", item)]
        calls += [("put", item), ("patch", item), ("delete", item)]
        if name == "jobs":
            calls += [("post", f"{item}cancel/"), ("post", f"{item}rerun/")]
            calls += [("get", f"{item}results/")]
        for method, url in calls:
            response = getattr(anonymous, method)(url, {}, format="json")
            assert response.status_code == 401, (method, url, response.status_code)


def test_a_user_without_rights_can_change_nothing_and_see_no_other_job(
    inventory, bobs_job, charlie
) -> None:
    client = api_as(charlie)
    for name, item in endpoints(inventory, bobs_job).items():
        if name == "jobs":
            continue
        assert client.post(f"/api/{name}/", {}, format="json").status_code == 403, name
        for method in ("put", "patch", "delete"):
            response = getattr(client, method)(item, {}, format="json")
            assert response.status_code == 403, (method, item, response.status_code)
    job = f"/api/jobs/{bobs_job.pk}/"
    for method, url in [("get", job), ("post", f"{job}cancel/"), ("post", f"{job}rerun/")]:
        assert getattr(client, method)(url, {}, format="json").status_code == 404, url
    assert client.get(f"{job}results/").status_code == 404
    for method in ("put", "patch", "delete"):
        assert getattr(client, method)(job, {}, format="json").status_code == 405
    run = {"module": 1003, "servers": [WWW_HOSTS[0]]}
    assert client.post("/api/jobs/", run, format="json").status_code == 400
    assert Job.objects.get().status == "running"  # bob's job, untouched
    assert Server.objects.count() == 3 and AppCategory.objects.count() == 2
