"""The OpenAPI document tells the truth: schemathesis calls every operation of the running
app (a live server, authenticated with an API token) with data drawn from the document
and checks each answer against it: no 500, only documented status codes, bodies and
content types as described.

No daemon runs: starting a job answers what a daemon that is away makes it answer
(documented), and nothing reaches a host.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from rest_framework.test import APIClient
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.failures import FailureGroup

from omserverweb.apitokens import services as api_tokens
from omserverweb.jobs.models import Job, JobHost

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture
def token(alice) -> str:
    return api_tokens.issue(alice, "schemathesis")[1]


@pytest.fixture
def history(inventory) -> Job:
    """A finished job, so that reading jobs and their results has something to read."""
    job = Job.objects.create(
        module_id=1003, requested_by="alice", client="web", targets=["www-01"], status="succeeded"
    )
    JobHost.objects.create(job=job, host="www-01", status="ok", rc=0, seq=1)
    Job.objects.filter(pk=job.pk).update(last_seq=1)
    return job


def test_every_answer_is_the_documented_one(live_server, token, daemon_down, history) -> None:
    auth = {"Authorization": f"Token {token}"}
    schema = schemathesis.openapi.from_url(
        f"{live_server.url}/api/schema/", headers={**auth, "Accept": "application/json"}
    )
    failures = {}
    for found in schema.get_all_operations():
        operation = found.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=20,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )
        def answers_as_documented(case) -> None:
            case.call_and_validate(headers=auth, checks=CHECKS)

        try:
            answers_as_documented()
        except (AssertionError, FailureGroup) as failure:  # every operation's, not the first
            failures[f"{operation.method.upper()} {operation.path}"] = str(failure)
    assert not failures, "\n\n".join(f"{op}: {failure}" for op, failure in failures.items())


def document(user) -> dict:
    client = APIClient()
    client.force_authenticate(user)
    return client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()


@pytest.mark.django_db
def test_the_lists_filters_are_documented(alice) -> None:
    paths = document(alice)["paths"]
    jobs = {p["name"] for p in paths["/api/jobs/"]["get"]["parameters"]}
    assert {"module", "user", "status", "host", "date_from", "date_to"} <= jobs
    servers = {p["name"] for p in paths["/api/servers/"]["get"]["parameters"]}
    assert "app_category" in servers


@pytest.mark.django_db
def test_a_jobs_results_are_documented_as_changes_not_a_page(alice) -> None:
    spec = document(alice)
    answer = spec["paths"]["/api/jobs/{id}/results/"]["get"]["responses"]["200"]
    name = answer["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    fields = set(spec["components"]["schemas"][name]["properties"])
    assert {"status", "total", "finished", "results", "cursor", "more"} <= fields
    assert "count" not in fields and "next" not in fields
