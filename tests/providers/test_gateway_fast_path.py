"""POST /v1/chat/completions with a gateway key is answered by the raw-ASGI fast path
(apps/providers/gateway_asgi.py). Real HTTP against the real server, relaying to the fake
OpenAI upstream: what a client sees must be what the Django view gave."""

import json
import socket
import time
from urllib.parse import urlsplit

import httpx
import openai
import pytest

from apps.providers.models import UsageRecord
from apps.tenants.models import ApiKeyScope, Role
from apps.tenants.services import api_key_create, api_key_revoke

pytestmark = pytest.mark.django_db(transaction=True)

HI = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def key(openai_ready):
    _, raw = api_key_create(
        actor=openai_ready.members[Role.OWNER], name="fast", scope=ApiKeyScope.GATEWAY
    )
    return raw


@pytest.fixture
def post(live_server_url, key):
    def post(body, *, token=key, headers=None, **kwargs):
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        auth = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.post(
            f"{live_server_url}/v1/chat/completions",
            content=content,
            headers={**auth, "Content-Type": "application/json", **(headers or {})},
            timeout=30,
            **kwargs,
        )

    return post


def _frames(text: str) -> list:
    return [
        line[6:] if line == "data: [DONE]" else json.loads(line[6:])
        for line in text.splitlines()
        if line.startswith("data: ")
    ]


def test_a_stream_has_the_api_headers_and_openai_chunks(post):
    response = post({**HI, "stream": True}, headers={"X-Request-ID": "trace-42"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-request-id"] == "trace-42"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    frames = _frames(response.text)
    assert frames[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(
        f["choices"][0]["delta"].get("content", "") for f in frames[:-1] if f["choices"]
    ) == ("You said: hi")
    assert {f["id"] for f in frames[:-1]} == {frames[0]["id"]}
    assert frames[-2]["choices"][0]["finish_reason"] == "stop"
    assert frames[-1] == "[DONE]"


def test_an_unsafe_request_id_is_replaced(post):
    response = post(HI, headers={"X-Request-ID": "bad id; rm -rf"})
    assert response.status_code == 200
    assert response.headers["x-request-id"] != "bad id; rm -rf"
    assert len(response.headers["x-request-id"]) == 32


def test_non_ascii_text_survives_the_relay(live_server_url, key):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=key, max_retries=0)
    chunks = client.chat.completions.create(
        model="openai/gpt-4o-mini",
        messages=[{"role": "user", "content": "héllo 世界 🚀"}],
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: héllo 世界 🚀"


@pytest.mark.parametrize(
    ("token", "why"),
    [("orr-not-a-key", "unknown"), ("", "missing"), ("app-no-handler-here", "app key")],
)
def test_bad_keys_get_openai_401(post, token, why):
    response = post(HI, token=token)
    assert response.status_code == 401, why
    assert response.json()["error"]["code"] == "invalid_api_key"


def test_a_revoked_or_management_key_is_refused(post, openai_ready):
    owner = openai_ready.members[Role.OWNER]
    _, management = api_key_create(actor=owner, name="mgmt")
    assert post(HI, token=management).status_code == 401
    revoked, raw = api_key_create(actor=owner, name="old", scope=ApiKeyScope.GATEWAY)
    api_key_revoke(actor=owner, api_key_id=revoked.pk)
    assert post(HI, token=raw).status_code == 401


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({**HI, "stream_options": "yes"}, "Malformed request"),
        ({**HI, "messages": []}, "messages must be a non-empty list"),
        ({**HI, "fallbacks": "openai/gpt-4o"}, "fallbacks must be a list"),
    ],
)
def test_bad_bodies_get_openai_400(post, body, message):
    response = post(body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_sdk_errors_map_as_before(live_server_url, key):
    client = openai.OpenAI(base_url=f"{live_server_url}/v1", api_key=key, max_retries=0)
    with pytest.raises(openai.BadRequestError, match="provider/model"):
        client.chat.completions.create(model="gpt-4o-mini", messages=HI["messages"])
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="openai/no-such", messages=HI["messages"])


def test_an_upstream_failure_mid_stream_becomes_an_error_frame(post, fake_openai):
    fake_openai.drop_after = 3
    words = [{"role": "user", "content": "a b c d e f g h"}]
    response = post({**HI, "messages": words, "stream": True})
    assert response.status_code == 200
    frames = _frames(response.text)
    assert frames[-1] == "[DONE]"
    assert frames[-2]["error"]["code"] == "provider_connection_error"
    record = UsageRecord.objects.get(source="gateway")
    assert record.status == "provider_connection_error"


def test_a_client_that_hangs_up_cancels_the_upstream_call(live_server_url, key, fake_openai):
    fake_openai.chunk_delay = 0.05
    words = " ".join(f"w{i}" for i in range(200))  # ten seconds of tokens
    body = json.dumps({**HI, "messages": [{"role": "user", "content": words}], "stream": True})
    url = urlsplit(live_server_url)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(
            (
                f"POST /v1/chat/completions HTTP/1.1\r\nHost: {url.netloc}\r\n"
                f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        received = b""
        while b'"content":"You"' not in received:
            received += sock.recv(65536)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not UsageRecord.objects.exists():
        time.sleep(0.05)
    record = UsageRecord.objects.get(source="gateway")
    assert record.status == "cancelled"
    assert record.latency_ms < 5000  # well before the ten seconds the answer would take


def test_a_body_over_the_upload_limit_is_refused(post, settings):
    huge = {**HI, "messages": [{"role": "user", "content": "x" * (6 * 1024 * 1024)}]}
    response = post(huge)
    assert response.status_code == 400
    assert "too large" in response.json()["error"]["message"]


def test_other_methods_still_get_the_api_405(live_server_url, key):
    response = httpx.get(
        f"{live_server_url}/v1/chat/completions", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"
