import pytest
from django.test import Client
from django.urls import reverse

from apps.tenants.models import Role
from tests.conftest import make_user

pytestmark = pytest.mark.django_db

XSS = '<script>alert("owned")</script><img src=x onerror=alert(1)>'


def test_names_written_by_users_are_escaped_everywhere_they_show(team):
    team.workspace.name = XSS
    team.workspace.save(update_fields=["name"])
    editor = team.members[Role.EDITOR].user
    editor.name = XSS
    editor.save(update_fields=["name"])
    for url in (reverse("apps"), reverse("members"), reverse("settings"), reverse("api_keys")):
        body = team.client().get(url).content.decode()
        assert "<script>alert" not in body, url
        assert "<img src=x" not in body, url
        assert "&lt;script&gt;" in body, url


def test_pages_carry_a_strict_content_security_policy():
    response = Client().get(reverse("login"))
    csp = response["Content-Security-Policy"]
    assert (
        "script-src 'self'" in csp
        and "unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    )
    assert "frame-ancestors 'none'" in csp
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_pages_have_no_inline_script(team):
    body = team.client().get(reverse("members")).content.decode()
    assert "onsubmit=" not in body and "onclick=" not in body
    assert "<script>" not in body  # every script has a src


def test_password_reset_requests_are_rate_limited(mailoutbox):
    make_user("flooded@example.com")
    client = Client(REMOTE_ADDR="10.1.1.1")
    statuses = [
        client.post(reverse("password_reset"), {"email": "flooded@example.com"}).status_code
        for _ in range(12)
    ]
    assert statuses[:10] == [302] * 10
    assert statuses[10:] == [429, 429]
    assert len(mailoutbox) == 10


def test_the_api_docs_load_their_assets_locally(db):
    body = Client().get("/api/docs").content.decode()
    assert "cdn." not in body and "/static/ninja/" in body
