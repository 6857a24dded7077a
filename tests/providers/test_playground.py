"""The playground: the page and its parameter controls, and the answer streamed over a real
websocket from the real server (daphne) relaying a fake OpenAI."""

import html
import json
import re
import time

import pytest
from django.test import Client, override_settings
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from apps.providers import catalog, services
from apps.providers.models import UsageRecord
from apps.providers.views.playground import PlaygroundInputError, read_parameters
from apps.tenants.models import Role

MODEL = "openai/gpt-4o-mini"
live_db = pytest.mark.django_db(transaction=True)
TEXT_FRAGMENT = re.compile(r'<div hx-swap-oob="beforeend:#playground-answer">(.*?)</div>', re.S)


# --- The page ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_page_offers_the_usable_models_with_their_parameters(openai_ready):
    response = openai_ready.client().get("/playground/", {"model": MODEL})
    assert response.status_code == 200
    page = response.content.decode()
    assert f'<option value="{MODEL}" selected>{MODEL}</option>' in page
    assert 'ws-connect="/ws/playground/"' in page and "ws-send" in page
    assert "django_htmx/ext/hx-ws-2" in page  # the extension comes from django-htmx
    # Rules become controls with the catalog's ranges and defaults.
    assert re.search(
        r'<input type="number" id="playground-param-temperature" name="param_temperature" '
        r'value="0.7" min="0" max="2" step="0.01"',
        page,
    )
    assert re.search(r'name="param_max_tokens" value="4096" min="1" max="16384" step="1"', page)
    assert '<select id="playground-param-response-format" name="param_response_format">' in page
    assert '<textarea id="playground-param-json-schema" name="param_json_schema"' in page
    assert f'name="workspace" value="{openai_ready.workspace.id}"' in page


@pytest.mark.django_db
def test_changing_the_model_re_renders_only_the_parameters(openai_ready):
    services.provider_credentials_save(
        actor=openai_ready.members[Role.OWNER],
        provider="anthropic",
        credentials={"anthropic_api_key": "sk-ant-fake"},
        validate=False,
    )
    model = "anthropic/claude-sonnet-4-20250514"
    response = openai_ready.client().get(
        "/playground/", {"model": model}, headers={"HX-Request": "true"}
    )
    part = response.content.decode()
    assert part.lstrip().startswith('<fieldset id="playground-parameters"')
    assert "<html" not in part
    assert 'type="checkbox" id="playground-param-thinking" name="param_thinking" value="true">' in (
        part
    )
    assert "param_top_k" in part and "param_frequency_penalty" not in part


@pytest.mark.django_db
def test_without_a_provider_the_page_explains_what_to_do(team):
    page = team.client().get("/playground/").content.decode()
    assert "No models to try yet" in page and "ws-connect" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("role", "status"),
    [(Role.NORMAL, 200), (Role.EDITOR, 200), (Role.DATASET_OPERATOR, 403)],
    ids=["member", "editor", "knowledge-operator"],
)
def test_who_may_open_the_playground(team, role, status):
    response = team.client(role).get("/playground/")
    assert response.status_code == status
    assert ('href="/playground/"' in response.content.decode()) == (status == 200)


def test_parameters_are_read_back_against_the_rules():
    rules = catalog.provider("openai").model("llm", "gpt-4o-mini").parameter_rules
    values = read_parameters(
        rules,
        {"param_temperature": "0.3", "param_max_tokens": "256", "param_seed": "", "x": "y"},
    )
    assert values == {"temperature": 0.3, "max_tokens": 256}
    with pytest.raises(PlaygroundInputError, match="Seed must be at least 0"):
        read_parameters(rules, {"param_seed": "-1"})


# --- The websocket ----------------------------------------------------------------------------


# tests/live_server.py starts the server with this SECRET_KEY, and sessions are signed with
# it: a session made here under any other key would be anonymous over there.
LIVE_SERVER_SECRET_KEY = "e2e-test-secret-key-not-for-production"


def session_cookie(user) -> str:
    with override_settings(SECRET_KEY=LIVE_SERVER_SECRET_KEY):
        client = Client()
        client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


def _open(base: str, user=None) -> ClientConnection:
    headers = {"Cookie": session_cookie(user)} if user else {}
    return connect(
        base.replace("http://", "ws://") + "/ws/playground/",
        origin=base,
        additional_headers=headers,
        open_timeout=10,
    )


def _form(team, message: str = "hello there", **fields) -> dict:
    """What the htmx ws extension sends for the playground form."""
    return {
        "workspace": str(team.workspace.id),
        "model": MODEL,
        "param_temperature": "0.7",
        "param_top_p": "1",
        "param_presence_penalty": "0",
        "param_frequency_penalty": "0",
        "param_max_tokens": "4096",
        "param_response_format": "",
        "param_json_schema": "",
        "param_seed": "",
        "system": "",
        "message": message,
        "action": "run",
        "HEADERS": {
            "HX-Request": "true",
            "HX-Trigger": None,
            "HX-Trigger-Name": None,
            "HX-Target": None,
            "HX-Current-URL": "http://127.0.0.1/playground/",
        },
        **fields,
    }


def _until_settled(ws: ClientConnection, states=("done", "error", "stopped")) -> list[str]:
    frames = []
    while True:
        frame = ws.recv(timeout=15)
        frames.append(frame)
        if any(f'data-state="{state}"' in frame for state in states):
            return frames


def _streamed(frames: list[str]) -> list[str]:
    return [html.unescape(m) for frame in frames for m in TEXT_FRAGMENT.findall(frame)]


@pytest.fixture
def live(openai_ready, fake_openai, live_server_url, transactional_db):
    fake_openai.chunk_delay = 0.06  # slower than one batch, so the answer comes in pieces
    return live_server_url


@live_db
def test_the_answer_streams_in_pieces_then_the_usage(openai_ready, fake_openai, live):
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready, "hello there <b>friend</b> & co")))
        frames = _until_settled(ws)
    assert 'data-state="running"' in frames[0]
    pieces = _streamed(frames)
    assert len(pieces) > 1
    assert "".join(pieces) == "You said: hello there <b>friend</b> & co"
    assert "<b>friend</b>" not in "".join(frames)  # the model's text arrives escaped
    usage = frames[-1]
    assert 'data-state="done"' in usage and 'data-testid="playground-usage"' in usage
    record = UsageRecord.objects.get(source="playground")
    assert record.user_id == openai_ready.owner.pk and record.status == "success"
    assert record.workspace_id == openai_ready.workspace.id
    assert f"{record.input_tokens} tokens in" in usage
    assert f"{record.output_tokens} out" in usage
    assert f"{record.price.normalize():f} USD" in usage
    assert re.search(r"first token \d+ ms", usage) and re.search(r"\d+ ms total", usage)
    sent = json.loads(fake_openai.requests[-1].body)
    assert sent["temperature"] == 0.7 and sent["max_tokens"] == 4096 and "seed" not in sent


@live_db
def test_a_fast_model_is_sent_in_batches_not_token_by_token(openai_ready, fake_openai, live):
    fake_openai.chunk_delay = 0.002
    words = " ".join(f"w{i}" for i in range(200))
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready, words)))
        pieces = _streamed(_until_settled(ws))
    assert "".join(pieces) == f"You said: {words}"
    assert 1 < len(pieces) < 100  # 202 tokens in about half a second, sent every 40 ms


@live_db
def test_provider_errors_come_back_readable(openai_ready, fake_openai, live):
    from tests.fakes.openai import openai_error

    fake_openai.queue(openai_error(400, "This model does not like you."))
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready)))
        frames = _until_settled(ws)
    assert 'data-testid="playground-error"' in frames[-1]
    assert "This model does not like you." in html.unescape(frames[-1])


@live_db
@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"param_temperature": "hot"}, "Temperature must be a number."),
        ({"param_temperature": "5"}, "Temperature must be between 0 and 2."),
        ({"param_max_tokens": "1.5"}, "Max tokens must be a whole number."),
        ({"param_response_format": "xml"}, "Response format must be one of"),
        ({"param_top_p": ["0.1", "0.2"]}, "Top P takes a single value."),
        ({"message": "   "}, "Write a message to send."),
        ({"model": "openai/not-a-model"}, "That model is not available in this workspace."),
        ({"model": None}, "That model is not available in this workspace."),
    ],
    ids=[
        "not-a-number",
        "out-of-range",
        "not-whole",
        "not-an-option",
        "list",
        "empty",
        "unknown-model",
        "no-model",
    ],
)
def test_bad_input_answers_with_an_error_fragment(openai_ready, fake_openai, live, fields, error):
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready, **fields)))
        frames = _until_settled(ws)
        assert len(frames) == 1 and error in html.unescape(frames[0])
        ws.send("not json at all")
        assert "could not be read" in ws.recv(timeout=5)
        # The socket is still good for a proper question.
        ws.send(json.dumps(_form(openai_ready)))
        assert 'data-state="done"' in _until_settled(ws)[-1]
    assert UsageRecord.objects.count() == 1


@live_db
def test_an_anonymous_websocket_is_refused(live):
    with pytest.raises(InvalidStatus) as refused:
        _open(live)
    assert refused.value.response.status_code == 403


@live_db
def test_a_foreign_origin_is_refused(openai_ready, live):
    with pytest.raises(InvalidStatus):
        connect(
            live.replace("http://", "ws://") + "/ws/playground/",
            origin="http://evil.example",
            additional_headers={"Cookie": session_cookie(openai_ready.owner)},
        )


@live_db
def test_another_workspace_cannot_use_this_workspaces_models(
    openai_ready, other_team, fake_openai, live
):
    with _open(live, other_team.owner) as ws:
        ws.send(json.dumps(_form(openai_ready)))  # names the victim's workspace
        assert "You are not a member of that workspace." in _until_settled(ws)[0]
        ws.send(json.dumps(_form(openai_ready, workspace="")))  # falls back to their own
        assert "That model is not available" in _until_settled(ws)[0]
        ws.send(json.dumps(_form(openai_ready, workspace="not-a-uuid")))
        assert "You are not a member of that workspace." in _until_settled(ws)[0]
    assert not UsageRecord.objects.exists()
    assert not [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]


@live_db
def test_a_knowledge_operator_may_not_use_the_playground(openai_ready, live):
    operator = openai_ready.members[Role.DATASET_OPERATOR].user
    with _open(live, operator) as ws:
        ws.send(json.dumps(_form(openai_ready)))
        assert "does not allow the playground" in _until_settled(ws)[0]
    assert not UsageRecord.objects.exists()


LONG = " ".join(f"word{i}" for i in range(60))


@live_db
def test_stop_cancels_the_generation(openai_ready, fake_openai, live):
    fake_openai.chunk_delay = 0.1
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready, LONG)))
        while not TEXT_FRAGMENT.search(ws.recv(timeout=10)):
            pass
        ws.send(json.dumps({"action": "stop", "HEADERS": {}}))
        frames = _until_settled(ws)
    assert 'data-state="stopped"' in frames[-1]
    record = UsageRecord.objects.get(source="playground")
    assert record.status == "cancelled"
    assert "word59" not in "".join(_streamed(frames))


@live_db
def test_closing_the_socket_cancels_the_generation(openai_ready, fake_openai, live):
    fake_openai.chunk_delay = 0.1
    with _open(live, openai_ready.owner) as ws:
        ws.send(json.dumps(_form(openai_ready, LONG)))
        while not TEXT_FRAGMENT.search(ws.recv(timeout=10)):
            pass
    deadline = time.monotonic() + 10
    while not UsageRecord.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    record = UsageRecord.objects.get(source="playground")
    assert record.status == "cancelled"
    assert record.output_tokens < 60
