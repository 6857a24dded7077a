"""/v1/chat/completions hands `app-` bearer tokens to a registered app chat handler (the
chat app registers one; providers does not import chat). Driven through the real ASGI
application in this process, so the handler registered here is the one that answers."""

import asyncio
import json

import httpx
import pytest
from django.http import JsonResponse

from apps.providers import gateway
from config.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)


def _post(token: str, body: bytes | dict):
    content = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def go():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            return await c.post(
                "/v1/chat/completions",
                content=content,
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
            )

    return asyncio.run(go())


@pytest.fixture
def app_handler():
    seen = []

    async def handler(request, token, body):
        seen.append((request.method, request.path, token, body))
        return JsonResponse({"answered_by": "app", "model": body.get("model")})

    gateway.register_app_chat_handler(handler)
    yield seen
    gateway.register_app_chat_handler(None)


def test_an_app_key_is_answered_by_the_registered_handler(app_handler):
    body = {"model": "whatever", "messages": [{"role": "user", "content": "hi"}]}
    response = _post("app-secret123", body)
    assert response.status_code == 200
    assert response.json() == {"answered_by": "app", "model": "whatever"}
    assert app_handler == [("POST", "/v1/chat/completions", "app-secret123", body)]


def test_an_app_key_with_a_body_that_is_not_an_object_gets_openai_400(app_handler):
    for raw in (b"[1, 2]", b"{not json"):
        response = _post("app-secret123", raw)
        assert response.status_code == 400
        assert response.json()["error"]["type"] == "invalid_request_error"
    assert app_handler == []


def test_without_a_handler_an_app_key_is_refused_like_any_bad_key():
    response = _post("app-secret123", {"model": "x", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_gateway_key_is_not_sent_to_the_app_handler(app_handler):
    response = _post("orr-not-a-real-key", {"model": "openai/x", "messages": []})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert app_handler == []
