"""The OpenAI-compatible adapter (and its Azure variant) against a fake OpenAI on a real
loopback port: what goes over the wire, and what comes back as our types and errors."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import collect
from apps.providers.runtime.adapters.openai import AzureOpenAIAdapter, OpenAIAdapter
from apps.providers.runtime.types import (
    Finish,
    ImagePart,
    LLMRequest,
    LLMResult,
    Message,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
    UsageEvent,
)
from tests.fakes.openai import (
    FakeAzureOpenAI,
    FakeOpenAI,
    azure_error,
    fake_speech,
    fake_vector,
    openai_error,
)
from tests.fakes.server import Reply
from tests.providers.adapter_harness import (
    MODES,
    AdapterHarness,
    closed_port_url,
    fake_fixtures,
    gather,
    gather_until_error,
)

KEY = "sk-fake-key"
AZURE_KEY = "azure-fake-key"
MODEL = "gpt-4o-mini"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)


OPENAI = AdapterHarness(OpenAIAdapter, "/v1", "openai", KEY, model=MODEL, prompt="hello there")
AZURE = AdapterHarness(AzureOpenAIAdapter, "", "openai", AZURE_KEY)
run, complete, ask = OPENAI.run, OPENAI.complete, OPENAI.ask
fake_server, fake = fake_fixtures(lambda: FakeOpenAI(api_key=KEY))
azure_server, azure = fake_fixtures(lambda: FakeAzureOpenAI(api_key=AZURE_KEY), name="azure")


# --- Text ----------------------------------------------------------------------------------


def test_a_blocking_reply_carries_text_usage_and_finish_reason(fake):
    result = complete(fake, ask("hello there"))

    assert result == LLMResult(
        model=MODEL, text="You said: hello there", usage=Usage(2, 4), finish_reason="stop"
    )
    sent = fake.requests[-1].json()
    assert fake.requests[-1].path == "/v1/chat/completions"
    assert "stream" not in sent and "stream_options" not in sent


def test_a_streamed_reply_arrives_in_deltas_then_usage_then_finish(fake):
    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask("hello there"))))

    texts = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(texts) == 4
    assert "".join(texts) == "You said: hello there"
    assert events[-2:] == [UsageEvent(Usage(2, 4)), Finish("stop")]
    sent = fake.requests[-1].json()
    assert sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}


@MODES
def test_max_tokens_cuts_the_reply_with_a_length_finish(fake, streaming):
    result = complete(fake, ask("hello there", parameters={"max_tokens": 2}), streaming)

    assert result.text == "You said:"
    assert result.finish_reason == "length"
    assert result.usage.output_tokens == 2


@MODES
def test_a_stop_sequence_ends_the_reply_before_it(fake, streaming):
    result = complete(fake, ask("hello there", stop=[" there"]), streaming)

    assert result.text == "You said: hello"
    assert result.finish_reason == "stop"
    assert fake.requests[-1].json()["stop"] == [" there"]


def test_parameters_pass_through_by_name_and_unset_ones_are_left_out(fake):
    parameters = {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "seed": 7,
        "top_k": None,
        "response_format": None,
    }
    complete(fake, ask(parameters=parameters, user="user-42"))

    sent = fake.requests[-1].json()
    assert {k: sent[k] for k in parameters if k in sent} == {
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 50,
        "presence_penalty": 0.1,
        "frequency_penalty": 0.3,
        "seed": 7,
    }
    assert sent["user"] == "user-42"
    assert "top_k" not in sent and "response_format" not in sent


def test_a_parameter_cannot_overwrite_the_model_or_messages(fake):
    complete(fake, ask(parameters={"model": "gpt-4o", "messages": []}))

    sent = fake.requests[-1].json()
    assert sent["model"] == MODEL
    assert sent["messages"] == [{"role": "user", "content": "hello there"}]


# --- Tools ---------------------------------------------------------------------------------


def test_tool_call_arguments_streamed_in_pieces_are_joined(fake):
    request = ask("What is the weather in Lisbon?", tools=[WEATHER])

    events = run(fake, lambda adapter: gather(adapter.stream_llm(request)))

    pieces = [event for event in events if isinstance(event, ToolCallDelta)]
    assert pieces[0].id and pieces[0].name == "get_weather"
    assert len([piece for piece in pieces if piece.arguments]) >= 2
    result = asyncio.run(collect(MODEL, _replay(events)))
    assert result.finish_reason == "tool_calls"
    [tool_call] = result.tool_calls
    assert tool_call.id.startswith("call_")
    assert tool_call.name == "get_weather"
    assert json.loads(tool_call.arguments) == {"location": "Lisbon"}


async def _replay(events: list) -> AsyncIterator:
    for event in events:
        yield event


def test_tools_are_offered_as_functions(fake):
    result = complete(fake, ask("What is the weather in Oslo?", tools=[WEATHER]))

    assert fake.requests[-1].json()["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Current weather in a city",
                "parameters": WEATHER.parameters,
            },
        }
    ]
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"location": "Oslo"})
    ]


@MODES
def test_a_tool_result_goes_back_as_a_tool_turn(fake, streaming):
    call_made = ToolCall(id="call_1", name="get_weather", arguments='{"location": "Lisbon"}')
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(role="user", content="What is the weather in Lisbon?"),
            Message(role="assistant", tool_calls=[call_made]),
            Message(role="tool", content="18°C and sunny", tool_call_id="call_1"),
        ],
        tools=[WEATHER],
    )

    result = complete(fake, request, streaming)

    assert result.text == "The tool said: 18°C and sunny"
    assistant, tool = fake.requests[-1].json()["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "Lisbon"}'},
            }
        ],
    }
    assert tool == {"role": "tool", "tool_call_id": "call_1", "content": "18°C and sunny"}


# --- Vision and structured output ----------------------------------------------------------


def test_images_are_sent_as_image_url_content_parts(fake):
    image = "data:image/png;base64,iVBORw0KGgo="
    content = [TextPart("What is this?"), ImagePart(url=image, detail="low")]
    request = LLMRequest(model=MODEL, messages=[Message(role="user", content=content)])

    result = complete(fake, request)

    assert fake.requests[-1].json()["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": image, "detail": "low"}},
    ]
    assert result.text == "You said: What is this? [1 image(s)]"


def test_text_only_parts_are_sent_as_a_plain_string(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[Message(role="user", content=[TextPart("Hello "), TextPart("again")])],
    )

    complete(fake, request)

    assert fake.requests[-1].json()["messages"][0]["content"] == "Hello again"


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
}


@pytest.mark.parametrize(
    ("parameters", "sent_format"),
    [
        pytest.param(
            {"response_format": "json_object"},
            {"type": "json_object"},
            id="json-object",
        ),
        pytest.param(
            {
                "response_format": "json_schema",
                "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
            },
            {
                "type": "json_schema",
                "json_schema": {"name": "answer", "schema": SCHEMA, "strict": True},
            },
            id="json-schema-wrapped",
        ),
        pytest.param(
            {"response_format": "json_schema", "json_schema": json.dumps(SCHEMA)},
            {"type": "json_schema", "json_schema": {"name": "response", "schema": SCHEMA}},
            id="json-schema-bare-text",
        ),
    ],
)
def test_structured_output_asks_for_the_response_format(fake, parameters, sent_format):
    result = complete(fake, ask("Answer in JSON", parameters=parameters))

    sent = fake.requests[-1].json()
    assert sent["response_format"] == sent_format
    assert "json_schema" not in sent
    assert isinstance(json.loads(result.text), dict)


def test_json_mode_without_the_word_json_is_refused_in_openais_words(fake):
    with pytest.raises(errors.InvokeBadRequestError) as caught:
        complete(fake, ask("hello", parameters={"response_format": "json_object"}))

    assert "must contain the word 'json'" in caught.value.provider_message
    assert caught.value.upstream_status == 400


# --- Streams that go wrong -----------------------------------------------------------------


@pytest.mark.parametrize(
    "quirk",
    [
        pytest.param({"stream_usage": False}, id="no-usage-chunk"),
        pytest.param({"send_done": False}, id="no-done-marker"),
    ],
)
def test_a_stream_from_a_less_complete_server_still_finishes(quirk):
    with FakeOpenAI(api_key=KEY, **quirk) as fake:
        events = run(fake, lambda adapter: gather(adapter.stream_llm(ask("hello there"))))

    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "You said: hello there"
    assert events[-1] == Finish("stop")
    assert any(isinstance(e, UsageEvent) for e in events) == quirk.get("stream_usage", True)


def test_a_stream_cut_off_midway_raises_after_the_deltas_that_arrived():
    with FakeOpenAI(api_key=KEY, drop_after=3) as fake:
        seen, error = run(
            fake, lambda adapter: gather_until_error(adapter.stream_llm(ask("hello there")))
        )

    assert seen == [TextDelta("You"), TextDelta(" said:")]
    assert isinstance(error, errors.InvokeConnectionError)


def test_a_stream_that_ends_without_a_finish_or_done_is_a_connection_error(fake):
    delta = {"index": 0, "delta": {"content": "Partial"}, "finish_reason": None}
    chunk = {"id": "x", "object": "chat.completion.chunk", "choices": [delta]}
    fake.queue(Reply.sse([f"data: {json.dumps(chunk)}"]))

    seen, error = run(fake, lambda adapter: gather_until_error(adapter.stream_llm(ask())))

    assert seen == [TextDelta("Partial")]
    assert isinstance(error, errors.InvokeConnectionError)


def test_an_error_sent_inside_the_stream_is_mapped(fake):
    frame = {"error": {"message": "Upstream provider overloaded", "code": 503}}
    fake.queue(Reply.sse([f"data: {json.dumps(frame)}"]))

    with pytest.raises(errors.InvokeServerUnavailableError) as caught:
        run(fake, lambda adapter: gather(adapter.stream_llm(ask())))

    assert caught.value.provider_message == "Upstream provider overloaded"


# --- Errors --------------------------------------------------------------------------------


ERROR_CASES = [
    pytest.param(
        {"api_key": "sk-wrong-key-123"},
        None,
        errors.InvokeAuthorizationError,
        "Incorrect API key provided: sk-*********-123",
        401,
        id="401-wrong-key",
    ),
    pytest.param(
        {"api_key": None},
        None,
        errors.InvokeAuthorizationError,
        "You didn't provide an API key",
        401,
        id="401-no-key",
    ),
    pytest.param(
        {"model": "gpt-9"},
        None,
        errors.InvokeBadRequestError,
        "The model `gpt-9` does not exist or you do not have access to it.",
        404,
        id="404-unknown-model",
    ),
    pytest.param(
        {},
        openai_error(429),
        errors.InvokeRateLimitError,
        "Rate limit reached for gpt-4o-mini",
        429,
        id="429",
    ),
    pytest.param(
        {},
        openai_error(500),
        errors.InvokeServerUnavailableError,
        "The server had an error while processing your request",
        500,
        id="500",
    ),
    pytest.param(
        {},
        openai_error(503),
        errors.InvokeServerUnavailableError,
        "The server is overloaded or not ready yet.",
        503,
        id="503",
    ),
]


@MODES
@pytest.mark.parametrize(("setup", "reply", "error", "message", "status"), ERROR_CASES)
def test_error_statuses_map_to_our_errors_keeping_openais_message(
    fake, streaming, setup, reply, error, message, status
):
    if reply is not None:
        fake.queue(reply)
    request = ask(model=setup.get("model", MODEL))

    with pytest.raises(error) as caught:
        complete(fake, request, streaming, api_key=setup.get("api_key", KEY))

    assert message in caught.value.provider_message
    assert caught.value.upstream_status == status


def test_a_rate_limit_carries_the_retry_after_seconds(fake):
    fake.queue(openai_error(429))

    with pytest.raises(errors.InvokeRateLimitError) as caught:
        complete(fake, ask())

    assert caught.value.retry_after == 20.0


@MODES
def test_an_unreachable_server_is_a_connection_error(streaming):
    with pytest.raises(errors.InvokeConnectionError):
        complete(None, ask(), streaming, base_url=closed_port_url("/v1"))


# --- Headers -------------------------------------------------------------------------------


def test_a_keyless_server_gets_no_authorization_header():
    with FakeOpenAI(api_key=None) as fake:
        result = complete(fake, ask(), api_key=None)

    assert result.text == "You said: hello there"
    assert "authorization" not in fake.requests[-1].headers


def test_the_key_and_organization_go_in_headers(fake):
    complete(fake, ask(), credentials={"openai_organization": "org-123"})

    headers = fake.requests[-1].headers
    assert headers["authorization"] == f"Bearer {KEY}"
    assert headers["openai-organization"] == "org-123"


# --- Embeddings, models, moderation, audio -------------------------------------------------


def test_embeddings_come_back_one_per_text_in_order_from_one_request(fake):
    texts = ["alpha", "beta gamma", "alpha"]

    result = run(fake, lambda adapter: adapter.embed("text-embedding-3-small", texts))

    assert result.vectors == [fake_vector(text, 8) for text in texts]
    assert result.vectors[0] == result.vectors[2] != result.vectors[1]
    assert result.usage.input_tokens == 4
    assert len(fake.requests) == 1
    assert fake.requests[-1].json() == {"model": "text-embedding-3-small", "input": texts}


def test_embedding_nothing_sends_nothing(fake):
    result = run(fake, lambda adapter: adapter.embed("text-embedding-3-small", []))

    assert result.vectors == []
    assert fake.requests == []


def test_listed_models_get_a_guessed_model_type(fake):
    models = run(fake, lambda adapter: adapter.list_models())

    assert {m.model: m.model_type for m in models} == {
        "gpt-4o-mini": "llm",
        "gpt-4o": "llm",
        "text-embedding-3-small": "text-embedding",
        "tts-1": "tts",
        "whisper-1": "speech2text",
        "omni-moderation-latest": "moderation",
    }
    assert fake.requests[-1].path == "/v1/models"


@pytest.mark.parametrize(
    ("text", "flagged"),
    [
        pytest.param("I will kill the process", True, id="flagged"),
        pytest.param("Have a lovely day", False, id="clean"),
    ],
)
def test_moderation_reports_flagged_categories(fake, text, flagged):
    result = run(fake, lambda adapter: adapter.moderate("omni-moderation-latest", text))

    assert result.flagged is flagged
    assert result.categories["violence"] is flagged
    assert result.categories["hate"] is False


def test_speech_streams_back_the_audio_bytes(fake):
    chunks = run(
        fake,
        lambda adapter: gather(adapter.text_to_speech("tts-1", "Good morning", voice="alloy")),
    )

    assert b"".join(chunks) == fake_speech("Good morning")
    assert fake.requests[-1].json() == {
        "model": "tts-1",
        "input": "Good morning",
        "voice": "alloy",
        "response_format": "mp3",
    }


def test_speech_cut_off_midway_is_a_connection_error():
    with FakeOpenAI(api_key=KEY, drop_after=2) as fake:
        chunks, error = run(
            fake,
            lambda adapter: gather_until_error(
                adapter.text_to_speech("tts-1", "Good morning", voice="alloy")
            ),
        )

    assert b"".join(chunks) == fake_speech("Good morning")[: len(b"".join(chunks))]
    assert isinstance(error, errors.InvokeConnectionError)


def test_transcription_uploads_the_audio_as_a_form(fake):
    text = run(
        fake,
        lambda adapter: adapter.speech_to_text(
            "whisper-1", fake_speech("Good morning"), filename="greeting.mp3"
        ),
    )

    assert text == "Good morning"
    sent = fake.requests[-1]
    assert sent.headers["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="file"; filename="greeting.mp3"' in sent.body
    assert b'name="model"\r\n\r\nwhisper-1' in sent.body


# --- Azure OpenAI --------------------------------------------------------------------------


@MODES
def test_azure_calls_the_deployment_with_api_version_and_api_key(azure, streaming):
    result = AZURE.complete(azure, ask(model="chat"), streaming)

    assert result.text == "You said: hello there"
    assert result.usage == Usage(2, 4)
    sent = azure.requests[-1]
    assert sent.path == "/openai/deployments/chat/chat/completions"
    assert sent.query == {"api-version": ["2024-10-21"]}
    assert sent.headers["api-key"] == AZURE_KEY
    assert "authorization" not in sent.headers


def test_azure_api_version_comes_from_the_credentials(azure):
    credentials = {"openai_api_version": "2024-06-01"}

    events = AZURE.run(
        azure,
        lambda adapter: gather(adapter.stream_llm(ask(model="chat"))),
        credentials=credentials,
    )

    sent = azure.requests[-1]
    assert sent.query == {"api-version": ["2024-06-01"]}
    # That version predates stream_options: asking for usage would be refused.
    assert "stream_options" not in sent.json()
    assert events[-1] == Finish("stop")


def test_azure_embeddings_use_the_deployment_path(azure):
    result = AZURE.run(azure, lambda adapter: adapter.embed("embedding", ["one", "two"]))

    assert result.vectors == [fake_vector("one", 8), fake_vector("two", 8)]
    assert azure.requests[-1].path == "/openai/deployments/embedding/embeddings"


@pytest.mark.parametrize(
    ("setup", "error", "message"),
    [
        pytest.param(
            {"model": "missing"},
            errors.InvokeBadRequestError,
            "The API deployment for this resource does not exist.",
            id="unknown-deployment",
        ),
        pytest.param(
            {"api_key": "wrong"},
            errors.InvokeAuthorizationError,
            "Access denied due to invalid subscription key",
            id="wrong-key",
        ),
    ],
)
def test_azure_errors_keep_azures_message(azure, setup, error, message):
    with pytest.raises(error) as caught:
        AZURE.complete(
            azure,
            ask(model=setup.get("model", "chat")),
            api_key=setup.get("api_key", AZURE_KEY),
        )

    assert message in caught.value.provider_message


def test_azure_rate_limit_carries_retry_after(azure):
    azure.queue(azure_error(429))

    with pytest.raises(errors.InvokeRateLimitError) as caught:
        AZURE.complete(azure, ask(model="chat"), streaming=True)

    assert caught.value.retry_after == 6.0
    assert "exceeded token rate limit" in caught.value.provider_message


def test_azure_cannot_list_deployments(azure):
    with pytest.raises(errors.InvokeBadRequestError):
        AZURE.run(azure, lambda adapter: adapter.list_models())
