"""The Cohere adapter against a fake Cohere API v2 on a real loopback port."""

from __future__ import annotations

import json

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import collect
from apps.providers.runtime.adapters.cohere import CohereAdapter
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
from tests.fakes.cohere import API_KEY, FakeCohere, Turn, error_reply
from tests.fakes.rerankers import fake_vector
from tests.providers.adapter_harness import (
    MODES,
    AdapterHarness,
    closed_port_url,
    fake_fixtures,
    gather,
)

MODEL = "command-a-03-2025"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)
DOCUMENTS = [
    "Bananas are yellow.",
    "Paris is the capital of France.",
    "The capital of Norway is Oslo.",
    "France exports wine.",
]
QUERY = "what is the capital of France"


COHERE = AdapterHarness(CohereAdapter, "/v2", "cohere", API_KEY, model=MODEL)
run, complete, ask = COHERE.run, COHERE.complete, COHERE.ask
fake_server, fake = fake_fixtures(FakeCohere)


# --- Chat ----------------------------------------------------------------------------------


@MODES
def test_chat_returns_text_and_billed_usage(fake, streaming):
    fake.say(Turn(text="Bonjour tout le monde", input_tokens=12, output_tokens=4))

    result = complete(fake, ask(), streaming)

    assert result.text == "Bonjour tout le monde"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (12, 4)
    assert result.finish_reason == "stop"
    sent = fake.requests[-1]
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.json()["messages"] == [{"role": "user", "content": "Hello?"}]


def test_stream_yields_text_pieces_then_usage_then_finish(fake):
    fake.say(Turn(text="One two three"))

    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask())))

    assert [e.text for e in events if isinstance(e, TextDelta)] == ["One", " two", " three"]
    assert isinstance(events[-2], UsageEvent) and isinstance(events[-1], Finish)
    assert fake.requests[-1].json()["stream"] is True


def test_system_turns_parameters_and_stop_use_cohere_names(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[Message(role="system", content="Be brief."), Message(role="user", content="Hi")],
        parameters={"temperature": 0.3, "top_p": 0.75, "top_k": 40, "max_tokens": 200, "seed": 1},
        stop=["END"],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    body = fake.requests[-1].json()
    assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    assert (body["temperature"], body["p"], body["k"]) == (0.3, 0.75, 40)
    assert (body["max_tokens"], body["seed"], body["stop_sequences"]) == (200, 1, ["END"])


@MODES
@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
    ],
    ids=["COMPLETE", "STOP_SEQUENCE", "MAX_TOKENS", "TOOL_CALL"],
)
def test_finish_reason_maps_to_ours(fake, streaming, finish, expected):
    fake.say(Turn(finish_reason=finish))

    assert complete(fake, ask(), streaming).finish_reason == expected


@MODES
def test_a_generation_cohere_ends_with_error_is_not_passed_off_as_complete(fake, streaming):
    fake.say(Turn(finish_reason="ERROR"))

    with pytest.raises(errors.InvokeServerUnavailableError):
        complete(fake, ask(), streaming)


def test_images_go_as_image_url_content(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(
                role="user",
                content=[
                    TextPart("What is this?"),
                    ImagePart(url="data:image/png;base64,iVBORw0KGgo="),
                ],
            )
        ],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    assert fake.requests[-1].json()["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]


# --- Tools ---------------------------------------------------------------------------------


@MODES
def test_tool_calls_come_back_whole(fake, streaming):
    fake.say(
        Turn(tool_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})])
    )

    result = complete(fake, ask("Paris and Oslo?", tools=[WEATHER]), streaming)

    assert result.finish_reason == "tool_calls"
    assert result.text == ""  # the tool plan is the model's reasoning, not the answer
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert all(c.id.startswith("get_weather_") for c in result.tool_calls)
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


def test_stream_sends_tool_arguments_in_pieces_by_call_index(fake):
    fake.say(Turn(tool_calls=[("get_weather", {"city": "Paris"})]))

    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask(tools=[WEATHER]))))

    pieces = [e for e in events if isinstance(e, ToolCallDelta)]
    assert pieces[0].name == "get_weather" and pieces[0].id
    assert len(pieces) > 2 and {p.index for p in pieces} == {0}


def test_tool_history_goes_back_as_tool_calls_and_tool_messages(fake):
    request = LLMRequest(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            Message(role="user", content="Paris?"),
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}')
                ],
            ),
            Message(role="tool", tool_call_id="call_1", content="18°C"),
        ],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    messages = fake.requests[-1].json()["messages"]
    assert messages[1] == {
        "role": "assistant",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "content": "18°C"}


# --- Structured output ---------------------------------------------------------------------


def test_json_schema_goes_in_response_format(fake):
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    fake.say(Turn(text='{"city": "Paris"}'))

    result = run(
        fake,
        lambda adapter: adapter.invoke_llm(
            ask(parameters={"response_format": "json_schema", "json_schema": schema})
        ),
    )

    assert json.loads(result.text) == {"city": "Paris"}
    assert fake.requests[-1].json()["response_format"] == {
        "type": "json_object",
        "json_schema": schema,
    }


# --- Embeddings ----------------------------------------------------------------------------


def test_embeddings_come_back_in_order_for_search_documents(fake):
    texts = ["alpha one", "beta two", "gamma three"]

    result = run(fake, lambda adapter: adapter.embed("embed-v4.0", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    assert result.usage.input_tokens == 6
    body = fake.requests[-1].json()
    assert body == {
        "model": "embed-v4.0",
        "texts": texts,
        "input_type": "search_document",
        "embedding_types": ["float"],
    }


def test_query_embeddings_use_search_query(fake):
    run(fake, lambda adapter: adapter.embed("embed-v4.0", ["who?"], input_type="query"))

    assert fake.requests[-1].json()["input_type"] == "search_query"


def test_more_than_96_texts_go_in_batches_keeping_order(fake):
    texts = [f"text {n}" for n in range(100)]

    result = run(fake, lambda adapter: adapter.embed("embed-v4.0", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    assert [len(r.json()["texts"]) for r in fake.requests] == [96, 4]
    assert result.usage.input_tokens == 200


# --- Rerank --------------------------------------------------------------------------------


def test_rerank_puts_the_best_document_first_with_its_text(fake):
    result = run(fake, lambda adapter: adapter.rerank("rerank-v3.5", QUERY, DOCUMENTS))

    assert [item.index for item in result.items] == [1, 2, 3, 0]
    assert result.items[0].text == "Paris is the capital of France."
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)


def test_rerank_top_n_is_sent_and_respected(fake):
    result = run(fake, lambda adapter: adapter.rerank("rerank-v3.5", QUERY, DOCUMENTS, top_n=2))

    assert [item.index for item in result.items] == [1, 2]
    assert fake.requests[-1].json()["top_n"] == 2


# --- Errors --------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.InvokeBadRequestError),
        (401, errors.InvokeAuthorizationError),
        (402, errors.InvokeRateLimitError),
        (404, errors.InvokeBadRequestError),
        (422, errors.InvokeBadRequestError),
        (429, errors.InvokeRateLimitError),
        (498, errors.InvokeAuthorizationError),
        (500, errors.InvokeServerUnavailableError),
        (503, errors.InvokeServerUnavailableError),
    ],
    ids=["400", "401", "402", "404", "422", "429", "498", "500", "503"],
)
def test_error_statuses_map_to_our_errors_keeping_the_providers_message(
    fake, streaming, status, expected
):
    fake.queue(error_reply(status, f"upstream says {status}"))

    with pytest.raises(expected) as caught:
        complete(fake, ask(), streaming)

    assert caught.value.provider_message == f"upstream says {status}"
    assert caught.value.upstream_status == status


@pytest.mark.parametrize(
    ("status", "expected"),
    [(400, errors.InvokeBadRequestError), (429, errors.InvokeRateLimitError)],
    ids=["400", "429"],
)
def test_embed_and_rerank_errors_map_too(fake, status, expected):
    fake.queue(error_reply(status, "nope"), error_reply(status, "nope"))

    with pytest.raises(expected):
        run(fake, lambda adapter: adapter.embed("embed-v4.0", ["a"]))
    with pytest.raises(expected):
        run(fake, lambda adapter: adapter.rerank("rerank-v3.5", "q", ["a"]))


def test_a_wrong_key_is_an_authorization_error(fake):
    with pytest.raises(errors.InvokeAuthorizationError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(ask()), api_key="wrong")

    assert caught.value.provider_message == "invalid api token"


def test_an_unknown_model_is_a_bad_request(fake):
    request = LLMRequest(model="command-nope", messages=[Message(role="user", content="Hi")])

    with pytest.raises(errors.InvokeBadRequestError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(request))

    assert "command-nope" in caught.value.provider_message


def test_connection_refused_is_a_connection_error(fake):
    base_url = closed_port_url()

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: adapter.invoke_llm(ask()), base_url=base_url)


def test_a_stream_cut_off_mid_way_is_a_connection_error(fake):
    fake.say(Turn(text="one two three four five six", drop_after=4))

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: collect(MODEL, adapter.stream_llm(ask())))
