"""The Ollama adapter against a fake Ollama on a real loopback port: NDJSON streams,
options, images, tools, structured output, embeddings, model listing and errors."""

from __future__ import annotations

import base64
import json

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.ollama import OllamaAdapter
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
from tests.fakes.ollama import FakeOllama, ollama_error
from tests.fakes.openai import fake_vector
from tests.fakes.server import FakeProvider, Reply
from tests.providers.adapter_harness import (
    MODES,
    AdapterHarness,
    closed_port_url,
    fake_fixtures,
    gather,
    gather_until_error,
)

MODEL = "llama3.2"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"location": {"type": "string"}}},
)
PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


OLLAMA = AdapterHarness(OllamaAdapter, "", "ollama", None, model=MODEL, prompt="hello there")
run, complete, ask = OLLAMA.run, OLLAMA.complete, OLLAMA.ask
fake_server, fake = fake_fixtures(FakeOllama)


# --- Text ----------------------------------------------------------------------------------


def test_a_blocking_reply_carries_text_usage_and_finish_reason(fake):
    result = complete(fake, ask("hello there"))

    assert result == LLMResult(
        model=MODEL, text="You said: hello there", usage=Usage(2, 4), finish_reason="stop"
    )
    assert fake.requests[-1].path == "/api/chat"
    assert fake.requests[-1].json()["stream"] is False


def test_a_streamed_reply_arrives_in_deltas_then_usage_then_finish(fake):
    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask("hello there"))))

    texts = [event.text for event in events if isinstance(event, TextDelta)]
    assert len(texts) == 4
    assert "".join(texts) == "You said: hello there"
    assert events[-2:] == [UsageEvent(Usage(2, 4)), Finish("stop")]
    assert fake.requests[-1].json()["stream"] is True


@MODES
def test_max_tokens_becomes_num_predict_and_a_length_finish(fake, streaming):
    result = complete(fake, ask(parameters={"max_tokens": 2}), streaming)

    assert fake.requests[-1].json()["options"] == {"num_predict": 2}
    assert result.text == "You said:"
    assert result.finish_reason == "length"


@MODES
def test_a_stop_sequence_is_an_option_and_ends_the_reply(fake, streaming):
    result = complete(fake, ask(stop=[" there"]), streaming)

    assert fake.requests[-1].json()["options"] == {"stop": [" there"]}
    assert result.text == "You said: hello"
    assert result.finish_reason == "stop"


def test_parameters_become_options_and_unset_ones_are_left_out(fake):
    parameters = {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "num_ctx": 8192,
        "presence_penalty": None,
        "keep_alive": "10m",
    }

    complete(fake, ask(parameters=parameters))

    sent = fake.requests[-1].json()
    assert sent["options"] == {
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "seed": 7,
        "num_ctx": 8192,
    }
    assert sent["keep_alive"] == "10m"


# --- Images --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "sent"),
    [
        pytest.param("data:image/png;base64,iVBORw0KGgo=", "iVBORw0KGgo=", id="base64-data-url"),
        pytest.param(
            "data:image/svg+xml,%3Csvg%2F%3E",
            base64.b64encode(b"<svg/>").decode(),
            id="percent-encoded-data-url",
        ),
    ],
)
def test_images_go_inline_as_bare_base64(fake, url, sent):
    content = [TextPart("What is this?"), ImagePart(url=url)]
    request = LLMRequest(model="llava", messages=[Message(role="user", content=content)])

    result = complete(fake, request)

    message = fake.requests[-1].json()["messages"][0]
    assert message == {"role": "user", "content": "What is this?", "images": [sent]}
    assert result.text == "You said: What is this? [1 image(s)]"


class ImageHost(FakeProvider):
    def __init__(self) -> None:
        super().__init__()
        self.route("GET", "/cat.png", lambda request: Reply(body=PNG))


def test_a_linked_image_is_fetched_and_sent_inline(fake):
    with ImageHost() as host:
        content = [TextPart("And this?"), ImagePart(url=f"{host.url}/cat.png")]
        request = LLMRequest(model="llava", messages=[Message(role="user", content=content)])

        complete(fake, request)

    assert fake.requests[-1].json()["messages"][0]["images"] == [base64.b64encode(PNG).decode()]


def test_a_linked_image_that_cannot_be_fetched_is_a_bad_request(fake):
    with ImageHost() as host:
        content = [ImagePart(url=f"{host.url}/missing.png")]
        request = LLMRequest(model="llava", messages=[Message(role="user", content=content)])

        with pytest.raises(errors.InvokeBadRequestError):
            complete(fake, request)

    assert fake.requests == []


# --- Tools and structured output -----------------------------------------------------------


@MODES
def test_a_tool_call_comes_back_with_json_arguments(fake, streaming):
    request = ask("What is the weather in Lisbon?", tools=[WEATHER])

    result = complete(fake, request, streaming)

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
    [tool_call] = result.tool_calls
    assert tool_call.id.startswith("call_")
    assert tool_call.name == "get_weather"
    assert json.loads(tool_call.arguments) == {"location": "Lisbon"}


def test_a_streamed_tool_call_is_one_delta(fake):
    request = ask("What is the weather in Lisbon?", tools=[WEATHER])

    events = run(fake, lambda adapter: gather(adapter.stream_llm(request)))

    [delta] = [event for event in events if isinstance(event, ToolCallDelta)]
    assert (delta.index, delta.name, json.loads(delta.arguments)) == (
        0,
        "get_weather",
        {"location": "Lisbon"},
    )


def test_a_tool_result_goes_back_with_the_tool_name(fake):
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

    result = complete(fake, request)

    assert result.text == "The tool said: 18°C and sunny"
    assistant, tool = fake.requests[-1].json()["messages"][1:]
    assert assistant == {
        "role": "assistant",
        "content": "",
        "tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Lisbon"}}}],
    }
    assert tool == {"role": "tool", "content": "18°C and sunny", "tool_name": "get_weather"}


SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "string"}, "confidence": {"type": "number"}},
    "required": ["answer", "confidence"],
}


@pytest.mark.parametrize(
    ("parameters", "sent_format"),
    [
        pytest.param({"response_format": "json_object"}, "json", id="json"),
        pytest.param(
            {"response_format": "json_schema", "json_schema": {"name": "a", "schema": SCHEMA}},
            SCHEMA,
            id="json-schema-wrapped",
        ),
        pytest.param(
            {"response_format": "json_schema", "json_schema": json.dumps(SCHEMA)},
            SCHEMA,
            id="json-schema-bare-text",
        ),
    ],
)
def test_structured_output_sets_the_format(fake, parameters, sent_format):
    result = complete(fake, ask("Answer me", parameters=parameters))

    sent = fake.requests[-1].json()
    assert sent["format"] == sent_format
    assert "options" not in sent
    assert isinstance(json.loads(result.text), dict)


# --- Streams that go wrong -----------------------------------------------------------------


def test_a_stream_cut_off_midway_raises_after_the_deltas_that_arrived():
    with FakeOllama(drop_after=2) as fake:
        seen, error = run(
            fake, lambda adapter: gather_until_error(adapter.stream_llm(ask("hello there")))
        )

    assert seen == [TextDelta("You"), TextDelta(" said:")]
    assert isinstance(error, errors.InvokeConnectionError)


def test_a_stream_that_ends_without_done_is_a_connection_error(fake):
    fake.queue(Reply.ndjson([{"model": MODEL, "message": {"content": "Partial"}, "done": False}]))

    seen, error = run(fake, lambda adapter: gather_until_error(adapter.stream_llm(ask())))

    assert seen == [TextDelta("Partial")]
    assert isinstance(error, errors.InvokeConnectionError)


def test_an_error_line_inside_the_stream_is_mapped(fake):
    lines = [
        {"model": MODEL, "message": {"role": "assistant", "content": "Hi"}, "done": False},
        {"error": "llama runner process has terminated: signal: killed"},
    ]
    fake.queue(Reply.ndjson(lines))

    seen, error = run(fake, lambda adapter: gather_until_error(adapter.stream_llm(ask())))

    assert seen == [TextDelta("Hi")]
    assert isinstance(error, errors.InvokeServerUnavailableError)
    assert error.provider_message == "llama runner process has terminated: signal: killed"


# --- Errors --------------------------------------------------------------------------------


ERROR_CASES = [
    pytest.param(
        ask(model="llama9"),
        None,
        errors.InvokeBadRequestError,
        'model "llama9" not found, try pulling it first',
        404,
        id="404-unknown-model",
    ),
    pytest.param(
        ask("weather?", model="llava", tools=[WEATHER]),
        None,
        errors.InvokeBadRequestError,
        "registry.ollama.ai/library/llava:latest does not support tools",
        400,
        id="400-no-tool-support",
    ),
    pytest.param(
        ask(),
        ollama_error(500, "llama runner process has terminated: exit status 2"),
        errors.InvokeServerUnavailableError,
        "llama runner process has terminated: exit status 2",
        500,
        id="500",
    ),
    pytest.param(
        ask(),
        ollama_error(503, "server busy, please try again.  maximum pending requests exceeded"),
        errors.InvokeServerUnavailableError,
        "server busy, please try again.",
        503,
        id="503",
    ),
]


@MODES
@pytest.mark.parametrize(("request_", "reply", "error", "message", "status"), ERROR_CASES)
def test_error_statuses_map_to_our_errors_keeping_ollamas_message(
    fake, streaming, request_, reply, error, message, status
):
    if reply is not None:
        fake.queue(reply)

    with pytest.raises(error) as caught:
        complete(fake, request_, streaming)

    assert message in caught.value.provider_message
    assert caught.value.upstream_status == status


@MODES
def test_an_unreachable_server_is_a_connection_error(streaming):
    base_url = closed_port_url()

    with pytest.raises(errors.InvokeConnectionError):
        complete(None, ask(), streaming, base_url=base_url)


@pytest.mark.parametrize(
    ("api_key", "authorization"),
    [pytest.param(None, None, id="keyless"), pytest.param("k-1", "Bearer k-1", id="behind-proxy")],
)
def test_a_key_is_sent_only_when_there_is_one(fake, api_key, authorization):
    complete(fake, ask(), api_key=api_key)

    assert fake.requests[-1].headers.get("authorization") == authorization


# --- Embeddings and models -----------------------------------------------------------------


def test_embeddings_come_back_one_per_text_in_order_from_one_request(fake):
    texts = ["alpha", "beta gamma", "alpha"]

    result = run(fake, lambda adapter: adapter.embed("nomic-embed-text", texts))

    assert result.vectors == [fake_vector(text, 8) for text in texts]
    assert result.usage.input_tokens == 4
    assert [r.path for r in fake.requests] == ["/api/embed"]
    assert fake.requests[-1].json() == {"model": "nomic-embed-text", "input": texts}


def test_embedding_nothing_sends_nothing(fake):
    assert run(fake, lambda adapter: adapter.embed("nomic-embed-text", [])).vectors == []
    assert fake.requests == []


def test_listed_models_are_the_pulled_tags_with_a_guessed_type(fake):
    models = run(fake, lambda adapter: adapter.list_models())

    assert {m.model: m.model_type for m in models} == {
        "llama3.2:latest": "llm",
        "llava:latest": "llm",
        "nomic-embed-text:latest": "text-embedding",
    }
    assert fake.requests[-1].path == "/api/tags"
