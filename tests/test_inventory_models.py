"""The inventory's integrity rules hold in the database, not only in forms."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from omserverweb.inventory.models import AppCategory, FunctionCategory, Server

pytestmark = pytest.mark.django_db


@pytest.fixture
def web() -> AppCategory:
    linux_web = FunctionCategory.objects.create(name="Linux.Web")
    return AppCategory.objects.create(function=linux_web, name="www.example.com")


def make_server(app: AppCategory, hostname: str, lan_ip: str) -> Server:
    return Server.objects.create(hostname=hostname, lan_ip=lan_ip, app_category=app)


def test_lan_ip_is_unique(web: AppCategory) -> None:
    make_server(web, "www-01", "10.0.0.1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_server(web, "www-02", "10.0.0.1")
    assert Server.objects.count() == 1


def test_hostname_is_unique(web: AppCategory) -> None:
    make_server(web, "www-01", "10.0.0.1")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_server(web, "www-01", "10.0.0.2")


def test_deleting_app_category_with_servers_is_refused(web: AppCategory) -> None:
    server = make_server(web, "www-01", "10.0.0.1")
    with pytest.raises(ProtectedError):
        web.delete()
    assert Server.objects.filter(pk=server.pk).exists()
    assert AppCategory.objects.filter(pk=web.pk).exists()


def test_deleting_function_category_with_app_categories_is_refused(web: AppCategory) -> None:
    make_server(web, "www-01", "10.0.0.1")
    with pytest.raises(ProtectedError):
        web.function.delete()
    assert AppCategory.objects.count() == 1
    assert Server.objects.count() == 1


def test_empty_categories_can_be_deleted(web: AppCategory) -> None:
    function = web.function
    web.delete()
    function.delete()
    assert not FunctionCategory.objects.exists()


def test_app_category_names_are_unique_within_a_function(web: AppCategory) -> None:
    other = FunctionCategory.objects.create(name="Linux.Cache")
    AppCategory.objects.create(function=other, name=web.name)  # same name elsewhere: fine
    with pytest.raises(IntegrityError), transaction.atomic():
        AppCategory.objects.create(function=web.function, name=web.name)


def test_hostname_rejects_shell_metacharacters(web: AppCategory) -> None:
    from django.core.exceptions import ValidationError

    server = Server(hostname="www;rm -rf /", lan_ip="10.0.0.9", app_category=web)
    with pytest.raises(ValidationError) as info:
        server.full_clean()
    assert "hostname" in info.value.message_dict
