"""Rate limits and quotas: per app, per end user, runs at once, messages a month. Each
refusal is a 429 with Retry-After and Dify's error body, and starts nothing."""

import httpx
import pytest

from apps.chat import keys
from apps.chat.models import Message
from apps.core.errors import RateLimited
from apps.tenants.models import Role
from tests.chat.conftest import converse, make_app

pytestmark = pytest.mark.django_db(transaction=True)


def api(team, app, live_server_url) -> httpx.Client:
    raw = keys.app_api_key_create(actor=team.members[Role.OWNER], app=app)[1]
    return httpx.Client(
        base_url=live_server_url + "/v1", headers={"Authorization": f"Bearer {raw}"}, timeout=20
    )


def ask(http, user="u", query="hi", **extra):
    return http.post("/chat-messages", json={"inputs": {}, "query": query, "user": user, **extra})


def test_the_app_limit_answers_429_with_retry_after(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat")
    app.rate_limit_per_minute = 2
    app.save()
    with api(openai_ready, app, live_server_url) as http:
        assert ask(http, "a").status_code == 200
        assert ask(http, "b").status_code == 200
        refused = ask(http, "c")
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 60
    assert refused.json()["code"] == "too_many_requests" and refused.json()["status"] == 429
    assert Message.objects.filter(app=app).count() == 2


def test_the_end_user_limit_leaves_other_users_alone(openai_ready, live_server_url):
    app = make_app(openai_ready, "chat")
    app.end_user_rate_limit_per_minute = 1
    app.save()
    with api(openai_ready, app, live_server_url) as http:
        assert ask(http, "alice").status_code == 200
        assert ask(http, "alice").status_code == 429
        assert ask(http, "bob").status_code == 200


def test_runs_at_once_are_capped(openai_ready, live_server_url, fake_openai):
    app = make_app(openai_ready, "chat")
    app.max_active_requests = 1
    app.save()
    fake_openai.chunk_delay = 0.05
    with api(openai_ready, app, live_server_url) as http:
        body = {"inputs": {}, "query": "a b c d e f g h", "user": "u", "response_mode": "streaming"}
        with http.stream("POST", "/chat-messages", json=body) as streaming:
            lines = streaming.iter_lines()
            next(lines)  # the first run is under way
            second = ask(http, "v")
            list(lines)
        assert second.status_code == 429 and "at once" in second.json()["message"]
        fake_openai.chunk_delay = 0
        assert ask(http, "w").status_code == 200  # the slot was given back


def test_the_monthly_message_quota(openai_ready, settings):
    settings.ORRERY_WORKSPACE_MONTHLY_MESSAGES = 1
    app = make_app(openai_ready, "chat")
    converse(app, query="first")
    with pytest.raises(RateLimited) as caught:
        converse(app, query="second")
    assert caught.value.code == "quota_exceeded" and caught.value.retry_after > 0
