import re

import pytest
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse

from apps.tenants.models import Membership, Role, User
from tests.conftest import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def test_sign_up_creates_an_account_that_owns_a_new_workspace():
    client = Client()
    response = client.post(
        reverse("signup"), {"name": "Ada", "email": "Ada@Example.com", "password": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == Role.OWNER
    assert membership.workspace.name == "Ada's workspace"
    page = client.get(reverse("apps"))
    assert "Ada&#x27;s workspace" in page.content.decode()


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("short", "too short"),
        ("password123", "too common"),
        ("73829105637", "entirely numeric"),
    ],
    ids=["short", "common", "numeric"],
)
def test_sign_up_rejects_weak_passwords_with_the_reason(password, message):
    response = Client().post(reverse("signup"), {"email": "weak@example.com", "password": password})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not User.objects.filter(email="weak@example.com").exists()


def test_sign_up_with_a_taken_email_is_refused_without_touching_the_account():
    existing = make_user("taken@example.com")
    response = Client().post(
        reverse("signup"), {"email": "TAKEN@example.com", "password": "another-Pass-9981"}
    )
    assert response.status_code == 400
    assert "already exists" in response.content.decode()
    existing.refresh_from_db()
    assert existing.check_password(PASSWORD)


def test_sign_up_with_garbage_gets_form_errors_not_a_crash():
    response = Client().post(reverse("signup"), {"email": "not-an-email", "password": ""})
    assert response.status_code == 400
    body = response.content.decode()
    assert "Enter a valid email address" in body
    assert "This field is required" in body


def test_login_answers_the_same_for_unknown_email_and_wrong_password():
    make_user("known@example.com")
    wrong = Client().post(
        reverse("login"), {"email": "known@example.com", "password": "nope-nope-1"}
    )
    unknown = Client().post(
        reverse("login"), {"email": "nobody@example.com", "password": "nope-nope-1"}
    )
    assert wrong.status_code == unknown.status_code == 400
    assert "do not match an account" in wrong.content.decode()
    assert _without_tokens(wrong, "known") == _without_tokens(unknown, "nobody")


def _without_tokens(response, email_name: str) -> str:
    """The page minus what legitimately differs: CSRF tokens and the echoed email."""
    return re.sub(r"[A-Za-z0-9]{64}", "", response.content.decode()).replace(email_name, "")


def test_login_then_logout_ends_the_session_on_the_server():
    user = make_user("leaving@example.com")
    client = Client()
    response = client.post(reverse("login"), {"email": "LEAVING@example.com", "password": PASSWORD})
    assert response.status_code == 302
    session_key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=session_key).exists()
    assert client.get(reverse("logout")).status_code == 405  # only POST signs out
    client.post(reverse("logout"))
    assert not Session.objects.filter(session_key=session_key).exists()
    assert client.get(reverse("members")).status_code == 302
    assert user.is_active


def test_login_is_limited_per_account_even_with_the_right_password(settings):
    settings.ORRERY_LOGIN_LIMIT_PER_ACCOUNT = 3
    make_user("target@example.com")
    for _ in range(3):
        Client(REMOTE_ADDR="10.0.0.1").post(
            reverse("login"), {"email": "target@example.com", "password": "guess-Guess-1"}
        )
    locked = Client(REMOTE_ADDR="10.0.0.2").post(
        reverse("login"), {"email": "target@example.com", "password": PASSWORD}
    )
    assert locked.status_code == 429
    assert "Too many sign-in attempts" in locked.content.decode()
    other = Client(REMOTE_ADDR="10.0.0.2")
    make_user("bystander@example.com")
    assert (
        other.post(
            reverse("login"), {"email": "bystander@example.com", "password": PASSWORD}
        ).status_code
        == 302
    )


def test_login_is_limited_per_ip_across_accounts(settings):
    settings.ORRERY_LOGIN_LIMIT_PER_IP = 4
    make_user("real@example.com")
    client = Client(REMOTE_ADDR="10.9.9.9")
    for n in range(4):
        client.post(reverse("login"), {"email": f"spray{n}@example.com", "password": "x-Y-z-123"})
    blocked = client.post(reverse("login"), {"email": "real@example.com", "password": PASSWORD})
    assert blocked.status_code == 429


def test_login_redirects_only_to_local_next_urls():
    make_user("nexter@example.com")
    outside = Client().post(
        reverse("login"),
        {"email": "nexter@example.com", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert outside["Location"] == "/"
    inside = Client().post(
        reverse("login"),
        {"email": "nexter@example.com", "password": PASSWORD, "next": "/settings/members/"},
    )
    assert inside["Location"] == "/settings/members/"


def test_password_reset_by_emailed_link(mailoutbox):
    user = make_user("forgetful@example.com")
    client = Client()
    response = client.post(reverse("password_reset"), {"email": "forgetful@example.com"})
    assert response.status_code == 302
    assert len(mailoutbox) == 1
    link = re.search(r"https?://\S+/password-reset/\S+/", mailoutbox[0].body).group(0)
    path = link.split("://", 1)[1].split("/", 1)[1]
    form_page = client.get("/" + path, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    new_password = "brand-New-Secret-77"
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": new_password, "new_password2": new_password},
    )
    assert done.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new_password)
    reuse = client.get("/" + path, follow=True)
    assert "no longer works" in reuse.content.decode()


def test_password_reset_for_unknown_email_looks_the_same_and_sends_nothing(mailoutbox):
    response = Client().post(reverse("password_reset"), {"email": "ghost@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert mailoutbox == []


@pytest.mark.parametrize("token", ["", "null", "x" * 40], ids=["empty", "null", "forged"])
def test_password_reset_rejects_forged_tokens(token):
    user = make_user("victim@example.com")
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    uid = urlsafe_base64_encode(force_bytes(user.pk))
    response = Client().post(
        f"/password-reset/{uid}/{token or '-'}/",
        {"new_password1": "taken-Over-1234", "new_password2": "taken-Over-1234"},
    )
    assert response.status_code in (200, 404)
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_session_and_csrf_cookies_are_http_only_and_same_site():
    client = Client()
    client.get(reverse("login"))
    make_user("cookie@example.com")
    client.post(reverse("login"), {"email": "cookie@example.com", "password": PASSWORD})
    session_cookie = client.cookies["sessionid"]
    assert session_cookie["httponly"]
    assert session_cookie["samesite"] == "Lax"
    assert client.cookies["csrftoken"]["httponly"]


def test_sign_up_can_be_closed_by_the_operator(settings):
    settings.ORRERY_SIGNUP_ENABLED = False
    response = Client().post(reverse("signup"), {"email": "new@example.com", "password": PASSWORD})
    assert response.status_code == 403
    assert not User.objects.filter(email="new@example.com").exists()
