"""The import page: a dry run shows the plan and writes nothing; Apply writes exactly that plan.

Alice may add and change servers; Carol lacks one permission or both.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpResponse
from django.test import Client
from django.urls import reverse

from omserverweb.inventory.importing.candidates import MAX_ROWS
from omserverweb.inventory.importing.csv_source import parse_csv
from omserverweb.inventory.importing.plan import PlanRow, StalePlanError, apply_plan, plan_import
from omserverweb.inventory.models import AppCategory, FunctionCategory, Server

pytestmark = pytest.mark.django_db

URL = reverse("console:inventory-import")


def make_user(name: str, *permissions: str) -> User:
    user = User.objects.create_user(name)
    user.user_permissions.set(Permission.objects.filter(codename__in=permissions))
    return user


@pytest.fixture
def alice(client: Client) -> Client:
    client.force_login(make_user("alice", "add_server", "change_server"))
    return client


@pytest.fixture
def web() -> AppCategory:
    return AppCategory.objects.create(
        function=FunctionCategory.objects.create(name="Linux.Web"), name="www.example.com"
    )


@pytest.fixture
def db_app() -> AppCategory:
    return AppCategory.objects.create(
        function=FunctionCategory.objects.create(name="Linux.Mysql"), name="db.example.com"
    )


@pytest.fixture
def www01(web: AppCategory) -> Server:
    return Server.objects.create(hostname="www-01", lan_ip="10.0.0.1", app_category=web)


def snapshot() -> list[dict[str, object]]:
    return list(Server.objects.order_by("hostname").values())


def dry_run(client: Client, text: str, source: str = "csv", **fields: object) -> HttpResponse:
    response = client.post(URL, {"source": source, "text": text, **fields})
    assert response.status_code == 200
    return response


def apply(dry: HttpResponse) -> HttpResponse:
    """Submit the dry-run page's form with its Apply button, as the browser would."""
    initial = dry.context["form"].initial
    data = {name: value for name, value in initial.items() if value is not None}
    if isinstance(data.get("default_category"), AppCategory):
        data["default_category"] = data["default_category"].pk
    return dry.client.post(URL, {**data, "apply": "1"})


def hostnames(rows: list[PlanRow]) -> list[str]:
    return [row.candidate.hostname for row in rows]


# --- CSV -------------------------------------------------------------------------------------

CSV = """hostname,lan_ip,app_category,ssh_port,notes
www-01,10.0.0.1,Linux.Web/www.example.com,2222,front
www-02,10.0.0.2,Linux.Web / www.example.com,,
db-01,10.0.1.1,Linux.Mysql/db.example.com,,primary
"""
WWW01_ONLY = "\n".join(CSV.splitlines()[:2])


def test_csv_dry_run_shows_the_plan_and_writes_nothing(
    alice: Client, www01: Server, db_app: AppCategory
) -> None:
    before = snapshot()
    response = dry_run(alice, CSV)
    plan = response.context["plan"]
    assert hostnames(plan.creates) == ["www-02", "db-01"]
    assert hostnames(plan.updates) == ["www-01"]
    assert plan.failed == []
    assert snapshot() == before
    page = response.content.decode()
    assert "Dry run" in page
    assert 'name="apply"' in page


def test_csv_update_shows_old_and_new_values(alice: Client, www01: Server) -> None:
    response = dry_run(alice, WWW01_ONLY)
    [row] = response.context["plan"].updates
    assert [(c.field, c.old, c.new) for c in row.changes] == [
        ("ssh_port", "22", "2222"),
        ("notes", "", "front"),
    ]
    page = response.content.decode()
    assert '<span class="mono muted">22</span> → <span class="mono">2222</span>' in page


def test_csv_apply_writes_exactly_the_plan(
    alice: Client, www01: Server, web: AppCategory, db_app: AppCategory
) -> None:
    text = CSV + "bad host,10.0.9.9,Linux.Web/www.example.com,,\n"
    dry = dry_run(alice, text)
    assert hostnames(dry.context["plan"].failed) == ["bad host"]

    response = apply(dry)

    assert response.status_code == 302
    assert [
        (s.hostname, s.lan_ip, s.app_category, s.ssh_port, s.notes)
        for s in Server.objects.order_by("hostname")
    ] == [
        ("db-01", "10.0.1.1", db_app, 22, "primary"),
        ("www-01", "10.0.0.1", web, 2222, "front"),
        ("www-02", "10.0.0.2", web, 22, ""),
    ]
    page = alice.get(response["Location"]).content.decode()
    assert "2 servers created, 1 updated" in page


def test_applying_the_same_file_again_changes_nothing(alice: Client, www01: Server) -> None:
    apply(dry_run(alice, WWW01_ONLY))
    plan = dry_run(alice, WWW01_ONLY).context["plan"]
    assert hostnames(plan.unchanged) == ["www-01"]
    assert not plan.has_changes


def test_empty_cells_and_missing_columns_keep_current_values(alice: Client, www01: Server) -> None:
    www01.notes = "keep me"
    www01.save()
    plan = dry_run(alice, "hostname,lan_ip,os,notes\nwww-01,,Debian 12,\n").context["plan"]
    [row] = plan.updates
    assert [(c.field, c.old, c.new) for c in row.changes] == [("os", "", "Debian 12")]


def test_default_category_places_new_servers_only(
    alice: Client, www01: Server, db_app: AppCategory
) -> None:
    text = "hostname,lan_ip\nwww-01,10.0.0.1\nnew-01,10.0.0.5\n"
    response = dry_run(alice, text, default_category=db_app.pk)
    plan = response.context["plan"]
    assert hostnames(plan.unchanged) == ["www-01"]  # keeps Linux.Web
    [create] = plan.creates
    assert create.server.app_category == db_app
    apply(response)
    assert Server.objects.get(hostname="new-01").app_category == db_app
    assert Server.objects.get(hostname="www-01").app_category == www01.app_category


def test_hostnames_match_regardless_of_case(alice: Client, www01: Server) -> None:
    plan = dry_run(alice, "hostname,lan_ip\nWWW-01,10.0.0.1\n").context["plan"]
    [row] = plan.updates
    assert [(c.field, c.old, c.new) for c in row.changes] == [("hostname", "www-01", "WWW-01")]


def test_csv_upload_is_read_like_pasted_text(alice: Client, www01: Server) -> None:
    upload = SimpleUploadedFile("servers.csv", ("\ufeff" + CSV).encode(), "text/csv")
    response = alice.post(URL, {"source": "csv", "upload": upload})
    plan = response.context["plan"]
    assert hostnames(plan.updates) == ["www-01"]
    assert hostnames(plan.failed) == ["db-01"]  # no such category yet
    assert response.context["form"].initial["text"] == CSV  # carried to Apply as text


ERROR_ROWS = [
    ("bad/host,10.0.5.1,Linux.Web/www.example.com,", "Use letters, digits"),
    ("web-05,10.0.5.300,Linux.Web/www.example.com,", "LAN IP: Enter a valid"),
    ("web-06,10.0.0.1,Linux.Web/www.example.com,", "already used by server www-01"),
    ("web-07,10.0.5.7,Linux.Web/nope.example.com,", "Unknown application category"),
    ("web-08,10.0.5.8,,", "No application category"),
    ("web-09,10.0.5.9,Linux.Web/www.example.com,99999", "SSH port: Ensure this value"),
    ("web-10,,Linux.Web/www.example.com,", "LAN IP: This field cannot be null"),
    ("web-11,10.0.5.11", "Expected 4 fields, found 2"),
]


@pytest.mark.parametrize(("row", "reason"), ERROR_ROWS)
def test_every_error_kind_is_reported(alice: Client, www01: Server, row: str, reason: str) -> None:
    response = dry_run(alice, f"hostname,lan_ip,app_category,ssh_port\n{row}\n")
    [failed] = response.context["plan"].failed
    assert failed.candidate.where == "line 2"
    assert any(reason in error for error in failed.errors), failed.errors
    assert reason in response.content.decode()


def test_duplicates_in_one_file_are_refused_on_every_row(alice: Client, web: AppCategory) -> None:
    text = (
        "hostname,lan_ip,app_category\n"
        "web-01,10.0.5.1,Linux.Web/www.example.com\n"
        "web-01,10.0.5.2,Linux.Web/www.example.com\n"
        "web-02,10.0.5.3,Linux.Web/www.example.com\n"
        "web-03,10.0.5.3,Linux.Web/www.example.com\n"
    )
    plan = dry_run(alice, text).context["plan"]
    assert plan.creates == []
    reasons = {row.candidate.where: row.errors for row in plan.failed}
    assert reasons["line 2"] == ["Hostname web-01 is given more than once in this source."]
    assert reasons["line 5"] == ["LAN IP 10.0.5.3 is given more than once in this source."]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("hostname,ip\nweb-01,10.0.0.1\n", "Unknown CSV column(s): ip"),
        ("hostname,os\nweb-01,Debian\n", "including lan_ip"),
        ("hostname,lan_ip,os,os\nweb-01,10.0.0.1,a,b\n", "given twice: os"),
    ],
)
def test_a_bad_csv_header_is_explained(alice: Client, text: str, reason: str) -> None:
    response = dry_run(alice, text)
    assert response.context.get("plan") is None
    assert reason in response.content.decode()


def test_xss_in_csv_is_shown_escaped(alice: Client, web: AppCategory) -> None:
    text = (
        "hostname,lan_ip,app_category,notes\n"
        "<script>alert(1)</script>,10.0.5.1,Linux.Web/www.example.com,ok\n"
        'web-01,10.0.5.2,Linux.Web/www.example.com,"<script>alert(2)</script>"\n'
    )
    page = dry_run(alice, text).content.decode()
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(2)&lt;/script&gt;" in page


# --- Salt --------------------------------------------------------------------------------------

SALT_KEYS = json.dumps(
    {
        "local": ["master.pem", "master.pub"],
        "minions": ["www-01", "www-02", "www-03", "www-04", "www-05"],
        "minions_pre": ["pending-01"],
        "minions_rejected": ["rejected-01"],
        "minions_denied": [],
    }
)
# As `salt --out=json '*' network.ip_addrs` prints it: one document per minion.
SALT_IPS = "\n".join(
    json.dumps(document)
    for document in [
        {"www-01": ["10.0.0.1"]},
        {"www-02": ["172.17.0.1", "10.0.0.2"]},
        {"www-03": {"fqdn_ip4": ["127.0.1.1", "10.0.0.3"]}},
        {"www-04": "Minion did not return. [No response]"},
        {"pending-01": ["10.0.0.9"]},
    ]
)


def test_salt_dry_run_imports_accepted_keys_with_known_ips(
    alice: Client, www01: Server, web: AppCategory
) -> None:
    before = snapshot()
    response = dry_run(alice, SALT_KEYS, "salt", salt_ips=SALT_IPS, default_category=web.pk)
    plan = response.context["plan"]
    assert hostnames(plan.unchanged) == ["www-01"]
    assert hostnames(plan.creates) == ["www-03"]
    assert plan.creates[0].server.lan_ip == "10.0.0.3"  # loopback from /etc/hosts ignored
    reasons = {row.candidate.hostname: row.errors for row in plan.failed}
    assert reasons == {
        "www-02": [
            "Several IP addresses (172.17.0.1, 10.0.0.2): set the LAN network to choose one."
        ],
        "www-04": ["No IP address is known for this minion."],
        "www-05": ["No IP address is known for this minion."],
    }
    assert snapshot() == before


def test_salt_lan_network_picks_the_address_and_apply_writes(
    alice: Client, www01: Server, web: AppCategory
) -> None:
    dry = dry_run(
        alice,
        SALT_KEYS,
        "salt",
        salt_ips=SALT_IPS,
        default_category=web.pk,
        lan_network="10.0.0.0/24",
    )
    assert hostnames(dry.context["plan"].creates) == ["www-02", "www-03"]
    assert apply(dry).status_code == 302
    assert dict(Server.objects.values_list("hostname", "lan_ip")) == {
        "www-01": "10.0.0.1",
        "www-02": "10.0.0.2",
        "www-03": "10.0.0.3",
    }


def test_salt_without_ip_json_lists_every_minion_as_an_error(alice: Client) -> None:
    plan = dry_run(alice, SALT_KEYS, "salt").context["plan"]
    assert len(plan.failed) == 5
    assert not plan.has_changes


@pytest.mark.parametrize(
    ("keys", "ips", "reason"),
    [
        ('{"minions_pre": ["a"]}', "", "it has no &quot;minions&quot; list"),
        ("not json", "", "The salt-key output is not valid JSON"),
        (SALT_KEYS, '{"www-01": ["10.0.0.1"]} [1]', "must map minion ids to addresses"),
    ],
)
def test_bad_salt_output_is_explained(alice: Client, keys: str, ips: str, reason: str) -> None:
    response = dry_run(alice, keys, "salt", salt_ips=ips)
    assert response.context.get("plan") is None
    assert reason in response.content.decode()


# --- Ansible -----------------------------------------------------------------------------------

INI = """\
[www.example.com]
www-01 ansible_host=10.0.0.1
www-02:2222 ansible_host=10.0.0.2
10.0.0.3

[db.example.com]
db[01:02] ansible_host=10.0.1.1

[db.example.com:vars]
ansible_user=deploy

[other]
cache-01 ansible_host=10.0.2.1
nowhere-01
"""

YAML = """\
all:
  children:
    www.example.com:
      hosts:
        www-01: {ansible_host: 10.0.0.1}
        www-02: {ansible_host: 10.0.0.2, ansible_port: 2222}
        10.0.0.3:
    db.example.com:
      vars: {ansible_user: deploy}
      hosts:
        db[01:02]: {ansible_host: 10.0.1.1}
    other:
      hosts:
        cache-01: {ansible_host: 10.0.2.1}
        nowhere-01:
"""


@pytest.mark.parametrize("text", [INI, YAML], ids=["ini", "yaml"])
def test_ansible_inventory_dry_run(
    alice: Client, www01: Server, web: AppCategory, db_app: AppCategory, text: str
) -> None:
    before = snapshot()
    response = dry_run(alice, text, "ansible", default_category=db_app.pk)
    plan = response.context["plan"]
    assert hostnames(plan.unchanged) == ["www-01"]
    created = {row.candidate.hostname: row.server for row in plan.creates}
    assert sorted(created) == ["10.0.0.3", "cache-01", "www-02"]
    assert (created["www-02"].lan_ip, created["www-02"].ssh_port) == ("10.0.0.2", 2222)
    assert created["www-02"].app_category == web  # its group names the category
    assert created["10.0.0.3"].lan_ip == "10.0.0.3"  # named by its IP
    assert created["cache-01"].app_category == db_app  # no category group: the default
    reasons = {row.candidate.hostname: row.errors for row in plan.failed}
    assert reasons["nowhere-01"] == ["No IP address: set ansible_host, or name the host by its IP."]
    assert (
        reasons["db01"]
        == reasons["db02"]
        == ["LAN IP 10.0.1.1 is given more than once in this source."]
    )
    assert snapshot() == before


def test_ansible_apply_writes_the_plan(
    alice: Client, web: AppCategory, db_app: AppCategory
) -> None:
    text = "[db.example.com]\ndb-01 ansible_host=10.0.1.1 ansible_user=deploy ansible_port=2200\n"
    dry = dry_run(alice, text, "ansible")
    apply(dry)
    server = Server.objects.get()
    assert (server.hostname, server.lan_ip, server.ssh_user, server.ssh_port) == (
        "db-01",
        "10.0.1.1",
        "deploy",
        2200,
    )
    assert server.app_category == db_app


def test_groups_matching_two_categories_are_an_error(
    alice: Client, web: AppCategory, db_app: AppCategory
) -> None:
    text = "[www.example.com]\nx ansible_host=10.0.0.7\n[db.example.com]\nx\n"
    [row] = dry_run(alice, text, "ansible").context["plan"].failed
    assert "match several application categories" in row.errors[0]


def test_vault_encrypted_values_are_an_error_row(alice: Client) -> None:
    text = (
        "all:\n  hosts:\n    h1:\n      ansible_host: !vault |\n"
        "          $ANSIBLE_VAULT;1.1;AES256\n"
        "          6231336539666234306139346433616338376437376461363365363430623138\n"
    )
    [row] = dry_run(alice, text, "ansible").context["plan"].failed
    assert row.errors == [
        "ansible_host must be text or a number (vault-encrypted values cannot be read)."
    ]


def test_inventory_plugins_that_run_code_are_not_used(alice: Client, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    text = (
        "plugin: generator\n"
        f"hosts:\n  name: \"{{{{ lookup('pipe', 'touch {marker}') }}}}h\"\n"
        "layers:\n  n: [a]\n"
    )
    response = dry_run(alice, text, "ansible")
    assert "Ansible cannot read this inventory" in response.content.decode()
    assert not marker.exists()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("[web]\nh[0:99999999999] ansible_host=10.0.0.1\n", "expand to more than 5000 hosts"),
        ("all:\n  children:\n    a: &a {hosts: {h: }}\n    b: *a\n", "YAML aliases"),
        ("[web]\nwww-01 ansible_host=10.0.0.1 oops\n", "Expected key=value"),
    ],
)
def test_bad_ansible_inventories_are_explained(alice: Client, text: str, reason: str) -> None:
    response = dry_run(alice, text, "ansible")
    assert response.context.get("plan") is None
    assert reason in response.content.decode()


# --- Apply is the dry run, or nothing --------------------------------------------------------


def test_apply_writes_nothing_when_the_plan_changed_since_the_dry_run(
    alice: Client, web: AppCategory
) -> None:
    dry = dry_run(
        alice, "hostname,lan_ip,app_category\nweb-01,10.0.5.1,Linux.Web/www.example.com\n"
    )
    Server.objects.create(hostname="other", lan_ip="10.0.5.1", app_category=web)

    response = apply(dry)

    assert response.status_code == 200
    assert list(Server.objects.values_list("hostname", flat=True)) == ["other"]
    assert hostnames(response.context["plan"].failed) == ["web-01"]
    assert "nothing was written" in response.content.decode()


def test_apply_without_the_dry_runs_fingerprint_writes_nothing(
    alice: Client, web: AppCategory
) -> None:
    text = "hostname,lan_ip,app_category\nweb-01,10.0.5.1,Linux.Web/www.example.com\n"
    response = alice.post(URL, {"source": "csv", "text": text, "apply": "1", "fingerprint": "x"})
    assert response.status_code == 200
    assert not Server.objects.exists()
    assert hostnames(response.context["plan"].creates) == ["web-01"]


def test_a_write_conflict_reports_the_new_plan(
    alice: Client, web: AppCategory, monkeypatch: pytest.MonkeyPatch
) -> None:
    Server.objects.create(hostname="web-01", lan_ip="10.0.5.9", app_category=web)
    # Planning misses web-01, as if another import created it after our read.
    monkeypatch.setattr(
        "omserverweb.inventory.importing.plan._existing_servers", lambda candidates: {}
    )
    candidates = parse_csv("hostname,lan_ip\nweb-01,10.0.5.1\n")
    stale = plan_import(candidates, web)
    assert hostnames(stale.creates) == ["web-01"]

    with pytest.raises(StalePlanError):
        apply_plan(candidates, web, stale.fingerprint)

    assert list(Server.objects.values_list("hostname", "lan_ip")) == [("web-01", "10.0.5.9")]


# --- limits and permissions ---------------------------------------------------------------------


def test_too_large_an_upload_is_refused(alice: Client) -> None:
    upload = SimpleUploadedFile("big.csv", b"x" * (settings.MAX_IMPORT_BYTES + 1))
    response = alice.post(URL, {"source": "csv", "upload": upload})
    assert "The data is larger than 2.0" in response.content.decode()


def test_too_many_rows_are_refused(alice: Client) -> None:
    rows = "".join(f"h{i},10.1.{i // 250}.{i % 250}\n" for i in range(MAX_ROWS + 1))
    response = dry_run(alice, "hostname,lan_ip\n" + rows)
    assert "More than 5000 servers" in response.content.decode()


def test_a_file_that_is_not_utf8_is_refused(alice: Client) -> None:
    upload = SimpleUploadedFile("servers.csv", "hostname\n主机".encode("gb18030"))
    response = alice.post(URL, {"source": "csv", "upload": upload})
    assert "The file is not UTF-8 text." in response.content.decode()


def test_it_shows_the_form(alice: Client) -> None:
    response = alice.get(URL)
    assert response.status_code == 200
    assert 'enctype="multipart/form-data"' in response.content.decode()


def test_anonymous_users_are_sent_to_login(client: Client) -> None:
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("permissions", [(), ("add_server",), ("change_server",)])
def test_users_without_both_permissions_are_refused(
    client: Client, web: AppCategory, permissions: tuple[str, ...]
) -> None:
    client.force_login(make_user("carol", *permissions))
    assert client.get(URL).status_code == 403
    text = "hostname,lan_ip,app_category\nweb-01,10.0.5.1,Linux.Web/www.example.com\n"
    response = client.post(URL, {"source": "csv", "text": text, "apply": "1"})
    assert response.status_code == 403
    assert not Server.objects.exists()
