"""Console pages rendered by the server: what each user sees, module authoring, languages."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.auth.models import Permission

from omserver.config import BASE_DIR
from omserver.modules.registry import ModuleRegistry
from omserverweb.jobs.models import Job
from omserverweb.modules.models import ModuleDefinition
from tests.conftest import WWW_HOSTS, logged_in


def console_data(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="console-data" type="application/json">') + 50
    return json.loads(html[start : html.index("</script>", start)])


def test_console_shows_only_granted_servers_and_modules(bob) -> None:
    data = console_data(logged_in(bob).get("/"))
    apps = [app for function in data["tree"] for app in function["apps"]]
    assert [app["name"] for app in apps] == ["www.example.com"]
    assert sorted(s["hostname"] for s in apps[0]["servers"]) == sorted(WWW_HOSTS)
    assert [m["id"] for m in data["modules"]] == [1001, 1003]
    lines = data["modules"][0]["params"][0]
    assert (lines["name"], lines["type"], lines["min"]) == ("lines", "int", 1)


def test_console_embeds_names_as_json_that_cannot_close_the_script(alice, inventory) -> None:
    inventory.www.name = "</script><script>alert(1)</script>"
    inventory.www.save()
    html = logged_in(alice).get("/").content.decode()
    assert "</script><script>alert(1)" not in html
    assert "\\u003C/script\\u003E\\u003Cscript\\u003Ealert(1)" in html


def test_job_history_filters_and_paginates(alice, bob) -> None:
    for n in range(30):
        Job.objects.create(
            module_id=1003 if n % 2 else 1001,
            requested_by="bob",
            client="web",
            targets=[WWW_HOSTS[0]],
            status="succeeded" if n % 3 else "failed",
        )
    web = logged_in(alice)
    page = web.get("/jobs/", {"module": 1003, "status": "failed"}).content.decode()
    expected = Job.objects.filter(module_id=1003, status="failed").count()
    assert len(re.findall(r'href="/jobs/\d+/"', page)) == expected
    first = web.get("/jobs/").content.decode()
    assert "page 1 of 2" in first
    assert "page=2" in first


def test_job_detail_shows_stored_parameters_with_secrets_masked(alice) -> None:
    job = Job.objects.create(
        module_id=1003,
        requested_by="alice",
        client="web",
        targets=[WWW_HOSTS[0]],
        params={"token": "********", "text": "hi"},
        rollout_stop="stopped after the canary: 1 of 1 hosts failed",
    )
    page = logged_in(alice).get(f"/jobs/{job.pk}/").content.decode()
    assert "token=********" in page
    assert "stopped after the canary" in page


def test_someone_elses_job_is_not_found_for_a_plain_user(bob, charlie) -> None:
    job = Job.objects.create(module_id=1003, requested_by="bob", client="web", targets=[])
    assert logged_in(charlie).get(f"/jobs/{job.pk}/").status_code == 404
    assert logged_in(bob).get(f"/jobs/{job.pk}/").status_code == 200


@pytest.mark.salt
def test_module_list_shows_what_the_daemon_loaded(alice, web_daemon) -> None:
    page = logged_in(alice).get("/modules/").content.decode()
    shipped = ModuleRegistry(BASE_DIR / "modules", "saltstack").all()
    assert page.count(">loaded<") == len(shipped)
    assert page.count(">no file<") == ModuleDefinition.objects.count() - len(shipped)
    assert "unreachable" not in page


def test_module_list_says_plainly_when_the_daemon_is_down(alice, daemon_down) -> None:
    page = logged_in(alice).get("/modules/").content.decode()
    assert f"master-control daemon unreachable at {daemon_down}" in page


def test_module_authoring_needs_the_permission(bob, caplog) -> None:
    assert logged_in(bob).get("/modules/add/").status_code == 403
    assert "refused: user=bob needs modules.add_moduledefinition" in caplog.text
    assert logged_in(bob).get("/modules/1003/skeleton/").status_code == 403
    bob.user_permissions.add(Permission.objects.get(codename="add_moduledefinition"))
    bob = type(bob).objects.get(pk=bob.pk)  # a fresh permission cache
    skeleton = logged_in(bob).get("/modules/2003/skeleton/")  # a new id: the add page's link
    assert skeleton.status_code == 200
    assert 'filename="Mid_2003.py"' in skeleton["Content-Disposition"]


def test_adding_a_module_validates_its_schema(alice) -> None:
    web = logged_in(alice)
    bad = web.post(
        "/modules/add/",
        {
            "id": 2001,
            "name": "x",
            "backends": ["ansible"],
            "params_schema": '[{"name": "n", "type": "float"}]',
        },
    )
    assert bad.status_code == 200
    assert "type must be one of" in bad.content.decode()
    good = web.post(
        "/modules/add/",
        {
            "id": 2001,
            "name": "disk usage",
            "caption": "df -h",
            "backends": ["ansible"],
            "params_schema": '[{"name": "path", "type": "path", "default": "/"}]',
            "enabled": "on",
        },
    )
    assert good.status_code == 302
    assert ModuleDefinition.objects.get(pk=2001).params_schema[0]["type"] == "path"


def test_the_skeleton_of_a_module_loads_as_a_mid_file(alice, tmp_path) -> None:
    ModuleDefinition.objects.create(
        id=2002,
        name='quote " and """ triple',
        caption="line\nbreak",
        params_schema=[{"name": "lines", "type": "int", "default": 5, "min": 1}],
    )
    response = logged_in(alice).get("/modules/2002/skeleton/")
    assert response["Content-Disposition"] == 'attachment; filename="Mid_2002.py"'
    folder = tmp_path / "common"
    folder.mkdir()
    (folder / "Mid_2002.py").write_bytes(response.content)
    module = ModuleRegistry(tmp_path, "ansible").get(2002)
    assert module.name == 'quote " and """ triple'
    assert module.params[0]["name"] == "lines"


def test_the_console_speaks_simplified_chinese_when_asked(bob) -> None:
    web = logged_in(bob)
    assert "Console" in web.get("/").content.decode()
    web.post("/i18n/setlang/", {"language": "zh-hans", "next": "/"})
    page = web.get("/").content.decode()
    assert "控制台" in page
    assert "执行" in page
    catalog = web.get("/jsi18n/").content.decode()
    assert "\\u8f93\\u51fa\\u76f8\\u540c" in catalog or "输出相同" in catalog
