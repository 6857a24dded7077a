"""The Anthropic adapter against a fake Messages API on a real loopback port."""

from __future__ import annotations

import json

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.anthropic import AnthropicAdapter
from apps.providers.runtime.adapters.base import collect
from apps.providers.runtime.types import (
    Finish,
    ImagePart,
    LLMRequest,
    Message,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    UsageEvent,
)
from tests.fakes.anthropic import API_KEY, FakeAnthropic, Turn, error_reply
from tests.providers.adapter_harness import (
    MODES,
    AdapterHarness,
    closed_port_url,
    fake_fixtures,
    gather,
)

MODEL = "claude-sonnet-4-5"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


ANTHROPIC = AdapterHarness(AnthropicAdapter, "/v1", "anthropic", API_KEY, model=MODEL)
run, complete, ask = ANTHROPIC.run, ANTHROPIC.complete, ANTHROPIC.ask
fake_server, fake = fake_fixtures(FakeAnthropic)


# --- Text ----------------------------------------------------------------------------------


def test_blocking_call_returns_text_usage_and_sends_system_at_top_level(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hello?"),
        ],
    )

    result = run(fake, lambda adapter: adapter.invoke_llm(request))

    assert result.text == "Hello from the fake Claude."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (21, 9)
    assert result.finish_reason == "stop"
    sent = fake.requests[-1]
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    body = sent.json()
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 4096
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "Hello?"}]}]
    assert "stream" not in body


def test_stream_yields_text_pieces_then_usage_then_finish(fake):
    fake.say(Turn(text="One two three", input_tokens=30, output_tokens=4))

    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask())))

    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert texts == ["One", " two", " three"]
    assert isinstance(events[-2], UsageEvent) and isinstance(events[-1], Finish)
    assert (events[-2].usage.input_tokens, events[-2].usage.output_tokens) == (30, 4)
    assert events[-1].reason == "stop"
    assert fake.requests[-1].json()["stream"] is True


@MODES
def test_cached_prompt_tokens_count_as_input(fake, streaming):
    fake.say(Turn(input_tokens=5, cache_read_input_tokens=1000))

    result = complete(fake, ask(), streaming)

    assert result.usage.input_tokens == 1005


@MODES
@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
    ],
    ids=["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal"],
)
def test_stop_reason_maps_to_our_finish_reason(fake, streaming, stop_reason, expected):
    fake.say(Turn(stop_reason=stop_reason))

    assert complete(fake, ask(), streaming).finish_reason == expected


def test_parameters_stop_sequences_and_user_go_into_the_request(fake):
    request = ask(
        parameters={"temperature": 0.2, "top_p": 0.9, "top_k": 40, "max_tokens": 256},
        stop=["END"],
        user="user-42",
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    body = fake.requests[-1].json()
    assert body["temperature"] == 0.2
    assert (body["top_p"], body["top_k"], body["max_tokens"]) == (0.9, 40, 256)
    assert body["stop_sequences"] == ["END"]
    assert body["metadata"] == {"user_id": "user-42"}


# --- Images --------------------------------------------------------------------------------


def test_images_go_as_base64_source_blocks_or_url_sources(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(
                role="user",
                content=[
                    TextPart("What is in these?"),
                    ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
                    ImagePart(url="https://example.com/cat.jpg"),
                ],
            )
        ],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    blocks = fake.requests[-1].json()["messages"][0]["content"]
    assert blocks == [
        {"type": "text", "text": "What is in these?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


# --- Tools ---------------------------------------------------------------------------------


@MODES
def test_tool_calls_come_back_whole_with_ids_names_and_arguments(fake, streaming):
    fake.say(
        Turn(
            text="Let me check.",
            tool_uses=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
        )
    )

    result = complete(fake, ask("Weather in Paris and Oslo?", tools=[WEATHER]), streaming)

    assert result.text == "Let me check."
    assert result.finish_reason == "tool_calls"
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("toolu_") for c in result.tool_calls)
    assert fake.requests[-1].json()["tools"] == [
        {
            "name": "get_weather",
            "description": "Current weather in a city",
            "input_schema": WEATHER.parameters,
        }
    ]


def test_stream_numbers_tool_calls_apart_from_the_text_block(fake):
    fake.say(Turn(text="Checking.", tool_uses=[("get_weather", {"city": "Paris"})]))

    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask(tools=[WEATHER]))))

    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert pieces[0].index == 0 and pieces[0].name == "get_weather" and pieces[0].id
    assert len(pieces) > 2  # the arguments arrive in several pieces
    assert {p.index for p in pieces} == {0}
    assert json.loads("".join(p.arguments for p in pieces)) == {"city": "Paris"}


@MODES
def test_a_tool_without_arguments_gets_an_empty_object(fake, streaming):
    fake.say(Turn(text="", tool_uses=[("now", {})]))

    result = complete(fake, ask(tools=[ToolSpec(name="now")]), streaming)

    assert [(c.name, c.arguments) for c in result.tool_calls] == [("now", "{}")]


def test_tool_history_becomes_tool_use_and_merged_tool_result_blocks(fake):
    request = LLMRequest(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            Message(role="user", content="Weather in Paris and Oslo?"),
            Message(
                role="assistant",
                content="Checking.",
                tool_calls=[
                    ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Paris"}'),
                    ToolCall(id="toolu_2", name="get_weather", arguments='{"city": "Oslo"}'),
                ],
            ),
            Message(role="tool", tool_call_id="toolu_1", content="18°C"),
            Message(role="tool", tool_call_id="toolu_2", content="9°C"),
        ],
    )

    result = run(fake, lambda adapter: adapter.invoke_llm(request))

    assert result.text  # the fake accepted the conversation
    messages = fake.requests[-1].json()["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"] == [
        {"type": "text", "text": "Checking."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
        {"type": "tool_use", "id": "toolu_2", "name": "get_weather", "input": {"city": "Oslo"}},
    ]
    assert messages[2]["content"] == [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18°C"},
        {"type": "tool_result", "tool_use_id": "toolu_2", "content": "9°C"},
    ]


# --- Structured output ---------------------------------------------------------------------

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
    "required": ["city", "celsius"],
}


@MODES
def test_json_schema_is_asked_for_with_a_forced_tool_and_answered_as_text(fake, streaming):
    fake.say(Turn(text='{"city": "Paris", "celsius": 18}'))
    request = ask(parameters={"response_format": "json_schema", "json_schema": SCHEMA})

    result = complete(fake, request, streaming)

    assert json.loads(result.text) == {"city": "Paris", "celsius": 18}
    assert result.tool_calls == []
    assert result.finish_reason == "stop"
    body = fake.requests[-1].json()
    assert body["tool_choice"] == {"type": "tool", "name": "structured_output"}
    assert body["tools"][0]["input_schema"] == SCHEMA


@pytest.mark.parametrize(
    "parameters",
    [
        {
            "response_format": "json_schema",
            "json_schema": json.dumps({"name": "weather", "strict": True, "schema": SCHEMA}),
        },
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "w", "schema": SCHEMA},
            }
        },
    ],
    ids=["wrapper-as-json-text", "openai-response-format"],
)
def test_json_schema_in_openai_shapes_is_understood(fake, parameters):
    fake.say(Turn(text='{"city": "Oslo", "celsius": 9}'))

    run(fake, lambda adapter: adapter.invoke_llm(ask(parameters=parameters)))

    assert fake.requests[-1].json()["tools"][0]["input_schema"] == SCHEMA


def test_json_schema_with_the_callers_own_tools_becomes_an_instruction(fake):
    request = ask(
        tools=[WEATHER], parameters={"response_format": "json_schema", "json_schema": SCHEMA}
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    body = fake.requests[-1].json()
    assert "tool_choice" not in body
    assert [tool["name"] for tool in body["tools"]] == ["get_weather"]
    assert json.dumps(SCHEMA) in body["system"]


# --- Errors --------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "invalid_request_error", errors.InvokeBadRequestError),
        (401, "authentication_error", errors.InvokeAuthorizationError),
        (403, "permission_error", errors.InvokeAuthorizationError),
        (404, "not_found_error", errors.InvokeBadRequestError),
        (429, "rate_limit_error", errors.InvokeRateLimitError),
        (500, "api_error", errors.InvokeServerUnavailableError),
        (529, "overloaded_error", errors.InvokeServerUnavailableError),
    ],
    ids=["400", "401", "403", "404", "429", "500", "529"],
)
def test_error_statuses_map_to_our_errors_keeping_the_providers_message(
    fake, streaming, status, error_type, expected
):
    fake.queue(error_reply(status, error_type, f"upstream says {error_type}"))

    with pytest.raises(expected) as caught:
        complete(fake, ask(), streaming)

    assert caught.value.provider_message == f"upstream says {error_type}"
    assert caught.value.upstream_status == status


def test_rate_limit_keeps_retry_after(fake):
    fake.queue(error_reply(429, "rate_limit_error", "slow down", headers={"retry-after": "7"}))

    with pytest.raises(errors.InvokeRateLimitError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(ask()))

    assert caught.value.retry_after == 7.0


def test_a_wrong_key_is_an_authorization_error(fake):
    with pytest.raises(errors.InvokeAuthorizationError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(ask()), api_key="sk-ant-wrong")

    assert caught.value.provider_message == "invalid x-api-key"


def test_an_unknown_model_is_a_bad_request(fake):
    request = LLMRequest(model="claude-nope", messages=[Message(role="user", content="Hi")])

    with pytest.raises(errors.InvokeBadRequestError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(request))

    assert "claude-nope" in caught.value.provider_message


def test_an_error_event_mid_stream_raises_the_mapped_error_after_the_text_so_far(fake):
    fake.say(Turn(text="Partial answer here", error=("overloaded_error", "Overloaded")))
    seen: list = []

    async def consume(adapter):
        async for event in adapter.stream_llm(ask()):
            seen.append(event)

    with pytest.raises(errors.InvokeServerUnavailableError) as caught:
        run(fake, consume)

    assert caught.value.provider_message == "Overloaded"
    assert [e.text for e in seen if isinstance(e, TextDelta)] == ["Partial"]


def test_connection_refused_is_a_connection_error(fake):
    base_url = closed_port_url("/v1")

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: adapter.invoke_llm(ask()), base_url=base_url)


def test_a_stream_cut_off_mid_way_is_a_connection_error(fake):
    fake.say(Turn(text="This answer never ends properly", drop_after=5))

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: collect(MODEL, adapter.stream_llm(ask())))


# --- Models --------------------------------------------------------------------------------


def test_list_models_follows_pages(fake):
    fake.models = [f"claude-test-{n:03d}" for n in range(150)]

    models = run(fake, lambda adapter: adapter.list_models())

    assert [m.model for m in models] == fake.models
    assert all(m.model_type == "llm" for m in models)
    assert [r.query.get("after_id") for r in fake.requests] == [None, ["claude-test-099"]]
