"""The Gemini adapter against a fake generativelanguage API on a real loopback port."""

from __future__ import annotations

import base64
import json

import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import collect
from apps.providers.runtime.adapters.gemini import GeminiAdapter
from apps.providers.runtime.types import (
    Finish,
    ImagePart,
    LLMRequest,
    Message,
    TextDelta,
    TextPart,
    ToolCall,
    ToolSpec,
    UsageEvent,
)
from tests.fakes.gemini import API_KEY, FakeGemini, Turn, error_reply, rate_limit_reply
from tests.fakes.rerankers import fake_vector
from tests.fakes.server import FakeProvider, Reply
from tests.providers.adapter_harness import (
    MODES,
    AdapterHarness,
    closed_port_url,
    fake_fixtures,
    gather,
)

MODEL = "gemini-2.5-flash"
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
PNG = b"\x89PNG\r\n\x1a\nfake-image-bytes"


GEMINI = AdapterHarness(GeminiAdapter, "/v1beta", "gemini", API_KEY, model=MODEL)
run, complete, ask = GEMINI.run, GEMINI.complete, GEMINI.ask
fake_server, fake = fake_fixtures(FakeGemini)


# --- Text ----------------------------------------------------------------------------------


def test_blocking_call_returns_text_and_usage_with_the_key_in_a_header(fake):
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(role="system", content="Be brief."),
            Message(role="user", content="Hello?"),
            Message(role="assistant", content="Hi."),
            Message(role="user", content="How are you?"),
        ],
    )

    result = run(fake, lambda adapter: adapter.invoke_llm(request))

    assert result.text == "Hello from the fake Gemini."
    assert (result.usage.input_tokens, result.usage.output_tokens) == (17, 8)
    assert result.finish_reason == "stop"
    sent = fake.requests[-1]
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent"
    assert sent.headers["x-goog-api-key"] == API_KEY
    assert "key" not in sent.query  # never in the URL, where logs would keep it
    body = sent.json()
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert [(c["role"], c["parts"]) for c in body["contents"]] == [
        ("user", [{"text": "Hello?"}]),
        ("model", [{"text": "Hi."}]),
        ("user", [{"text": "How are you?"}]),
    ]


def test_stream_asks_for_sse_and_yields_text_then_usage_then_finish(fake):
    fake.say(Turn(text="One two three four five", prompt_tokens=40, output_tokens=5))

    events = run(fake, lambda adapter: gather(adapter.stream_llm(ask())))

    assert [e.text for e in events if isinstance(e, TextDelta)] == [
        "One two",
        " three four",
        " five",
    ]
    assert isinstance(events[-2], UsageEvent) and isinstance(events[-1], Finish)
    assert (events[-2].usage.input_tokens, events[-2].usage.output_tokens) == (40, 5)
    sent = fake.requests[-1]
    assert sent.path.endswith(":streamGenerateContent")
    assert sent.query["alt"] == ["sse"]


@MODES
def test_thinking_tokens_count_as_output(fake, streaming):
    fake.say(Turn(output_tokens=8, thoughts_tokens=100))

    assert complete(fake, ask(), streaming).usage.output_tokens == 108


@MODES
@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("OTHER", "stop"),
    ],
    ids=["STOP", "MAX_TOKENS", "SAFETY", "RECITATION", "OTHER"],
)
def test_finish_reason_maps_to_ours(fake, streaming, finish, expected):
    fake.say(Turn(finish_reason=finish))

    assert complete(fake, ask(), streaming).finish_reason == expected


@MODES
def test_a_blocked_prompt_finishes_as_content_filter_without_text(fake, streaming):
    fake.say(Turn(block_reason="SAFETY"))

    result = complete(fake, ask(), streaming)

    assert (result.text, result.finish_reason) == ("", "content_filter")


def test_parameters_and_stop_go_into_generation_config(fake):
    request = ask(
        parameters={"temperature": 0.3, "top_p": 0.8, "top_k": 20, "max_tokens": 512, "seed": 7},
        stop=["END"],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    assert fake.requests[-1].json()["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.8,
        "topK": 20,
        "maxOutputTokens": 512,
        "seed": 7,
        "stopSequences": ["END"],
    }


# --- Images --------------------------------------------------------------------------------


def test_data_url_images_go_inline_as_base64(fake):
    data = base64.b64encode(PNG).decode()
    request = LLMRequest(
        model=MODEL,
        messages=[
            Message(
                role="user",
                content=[TextPart("What is this?"), ImagePart(url=f"data:image/png;base64,{data}")],
            )
        ],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    assert fake.requests[-1].json()["contents"][0]["parts"] == [
        {"text": "What is this?"},
        {"inlineData": {"mimeType": "image/png", "data": data}},
    ]


def test_https_images_are_fetched_and_sent_inline(fake):
    with FakeProvider() as images:
        images.route(
            "GET", "/cat.png", lambda r: Reply(body=PNG, headers={"Content-Type": "image/png"})
        )
        request = LLMRequest(
            model=MODEL,
            messages=[Message(role="user", content=[ImagePart(url=images.url + "/cat.png")])],
        )

        run(fake, lambda adapter: adapter.invoke_llm(request))

    part = fake.requests[-1].json()["contents"][0]["parts"][0]
    assert part == {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}


def test_an_image_url_that_is_not_an_image_is_a_bad_request(fake):
    with FakeProvider() as pages:
        pages.route(
            "GET", "/page", lambda r: Reply(body=b"<html>", headers={"Content-Type": "text/html"})
        )
        request = LLMRequest(
            model=MODEL,
            messages=[Message(role="user", content=[ImagePart(url=pages.url + "/page")])],
        )

        with pytest.raises(errors.InvokeBadRequestError):
            run(fake, lambda adapter: adapter.invoke_llm(request))

    assert fake.requests == []


# --- Tools ---------------------------------------------------------------------------------


@MODES
def test_function_calls_come_back_as_tool_calls_with_ids(fake, streaming):
    fake.say(
        Turn(
            text="",
            function_calls=[("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Oslo"})],
        )
    )

    result = complete(fake, ask("Paris and Oslo?", tools=[WEATHER]), streaming)

    assert result.finish_reason == "tool_calls"  # Gemini itself says STOP
    assert [(c.name, json.loads(c.arguments)) for c in result.tool_calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_weather", {"city": "Oslo"}),
    ]
    assert len({c.id for c in result.tool_calls}) == 2


def test_tools_become_function_declarations_with_a_schema_gemini_accepts(fake):
    now = ToolSpec(name="now", description="The time")  # no parameters at all

    run(fake, lambda adapter: adapter.invoke_llm(ask(tools=[WEATHER, now])))

    assert fake.requests[-1].json()["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": {
                        "type": "OBJECT",
                        "properties": {"city": {"type": "STRING"}},
                        "required": ["city"],
                    },
                },
                {"name": "now", "description": "The time"},
            ]
        }
    ]


def test_tool_results_go_back_as_function_responses_named_after_the_call(fake):
    request = LLMRequest(
        model=MODEL,
        tools=[WEATHER],
        messages=[
            Message(role="user", content="Paris and Oslo?"),
            Message(
                role="assistant",
                tool_calls=[
                    ToolCall(id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
                    ToolCall(id="call_b", name="get_weather", arguments='{"city": "Oslo"}'),
                ],
            ),
            Message(role="tool", tool_call_id="call_a", content='{"celsius": 18}'),
            Message(role="tool", tool_call_id="call_b", content="9°C and rain"),
        ],
    )

    run(fake, lambda adapter: adapter.invoke_llm(request))

    contents = fake.requests[-1].json()["contents"]
    assert [c["role"] for c in contents] == ["user", "model", "user"]
    assert contents[1]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}},
    ]
    assert contents[2]["parts"] == [
        {"functionResponse": {"name": "get_weather", "response": {"celsius": 18}}},
        {"functionResponse": {"name": "get_weather", "response": {"output": "9°C and rain"}}},
    ]


# --- Structured output ---------------------------------------------------------------------


@MODES
def test_json_schema_sets_response_mime_type_and_a_gemini_schema(fake, streaming):
    fake.say(Turn(text='{"city": "Paris", "celsius": 18}'))
    schema = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "type": "object",
        "properties": {
            "city": {"type": "string"},
            "celsius": {"type": ["number", "null"]},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["city"],
        "additionalProperties": False,
    }
    request = ask(parameters={"response_format": "json_schema", "json_schema": schema})

    result = complete(fake, request, streaming)

    assert json.loads(result.text) == {"city": "Paris", "celsius": 18}
    config = fake.requests[-1].json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseSchema"] == {
        "type": "OBJECT",
        "properties": {
            "city": {"type": "STRING"},
            "celsius": {"type": "NUMBER", "nullable": True},
            "tags": {"type": "ARRAY", "items": {"type": "STRING"}},
        },
        "required": ["city"],
    }


def test_json_object_sets_only_the_mime_type(fake):
    run(
        fake, lambda adapter: adapter.invoke_llm(ask(parameters={"response_format": "json_object"}))
    )

    assert fake.requests[-1].json()["generationConfig"] == {"responseMimeType": "application/json"}


# --- Embeddings and models -------------------------------------------------------------------


def test_embeddings_come_back_in_order_with_the_document_task_type(fake):
    texts = ["alpha", "beta", "gamma"]

    result = run(fake, lambda adapter: adapter.embed("text-embedding-004", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    sent = fake.requests[-1]
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.json()["requests"][0] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "alpha"}]},
        "taskType": "RETRIEVAL_DOCUMENT",
    }


def test_query_embeddings_use_the_query_task_type(fake):
    run(fake, lambda adapter: adapter.embed("text-embedding-004", ["who?"], input_type="query"))

    assert fake.requests[-1].json()["requests"][0]["taskType"] == "RETRIEVAL_QUERY"


def test_more_than_100_texts_go_in_batches_of_100_keeping_order(fake):
    texts = [f"text {n}" for n in range(150)]

    result = run(fake, lambda adapter: adapter.embed("gemini-embedding-001", texts))

    assert result.vectors == [fake_vector(t) for t in texts]
    assert [len(r.json()["requests"]) for r in fake.requests] == [100, 50]


def test_list_models_keeps_chat_and_embedding_models_with_their_context(fake):
    models = run(fake, lambda adapter: adapter.list_models())

    assert [(m.model, m.model_type, m.context_size) for m in models] == [
        ("gemini-2.5-flash", "llm", 1_048_576),
        ("gemini-2.5-pro", "llm", 1_048_576),
        ("text-embedding-004", "text-embedding", 2048),
        ("gemini-embedding-001", "text-embedding", 2048),
    ]


def test_list_models_follows_page_tokens(fake):
    fake.models = fake.models * 300  # 1500 entries: two pages of at most 1000

    models = run(fake, lambda adapter: adapter.list_models())

    assert len(models) == 1200
    assert [r.query.get("pageToken") for r in fake.requests] == [None, ["1000"]]


# --- Errors --------------------------------------------------------------------------------


@MODES
@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, errors.InvokeBadRequestError),
        (403, errors.InvokeAuthorizationError),
        (404, errors.InvokeBadRequestError),
        (429, errors.InvokeRateLimitError),
        (500, errors.InvokeServerUnavailableError),
        (503, errors.InvokeServerUnavailableError),
    ],
    ids=["400", "403", "404", "429", "500", "503"],
)
def test_error_statuses_map_to_our_errors_keeping_the_providers_message(
    fake, streaming, status, expected
):
    fake.queue(error_reply(status, f"upstream says {status}"))

    with pytest.raises(expected) as caught:
        complete(fake, ask(), streaming)

    assert caught.value.provider_message == f"upstream says {status}"
    assert caught.value.upstream_status == status


def test_a_wrong_key_is_an_authorization_error_though_google_answers_400(fake):
    with pytest.raises(errors.InvokeAuthorizationError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(ask()), api_key="AIza-wrong")

    assert caught.value.provider_message == "API key not valid. Please pass a valid API key."
    assert caught.value.upstream_status == 400


def test_rate_limit_takes_the_retry_delay_from_the_error_details(fake):
    fake.queue(rate_limit_reply("Resource has been exhausted (e.g. check quota).", 31))

    with pytest.raises(errors.InvokeRateLimitError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(ask()))

    assert caught.value.retry_after == 31.0


def test_an_unknown_model_is_a_bad_request_with_googles_explanation(fake):
    request = LLMRequest(model="gemini-nope", messages=[Message(role="user", content="Hi")])

    with pytest.raises(errors.InvokeBadRequestError) as caught:
        run(fake, lambda adapter: adapter.invoke_llm(request))

    assert "models/gemini-nope is not found" in caught.value.provider_message


def test_embedding_errors_map_too(fake):
    fake.queue(error_reply(429, "Quota exceeded for embed_content_requests"))

    with pytest.raises(errors.InvokeRateLimitError):
        run(fake, lambda adapter: adapter.embed("text-embedding-004", ["a"]))


def test_an_error_frame_mid_stream_raises_the_mapped_error(fake):
    fake.say(Turn(text="A long answer that breaks", error=(503, "The model is overloaded.")))

    with pytest.raises(errors.InvokeServerUnavailableError) as caught:
        run(fake, lambda adapter: collect(MODEL, adapter.stream_llm(ask())))

    assert caught.value.provider_message == "The model is overloaded."


def test_connection_refused_is_a_connection_error(fake):
    base_url = closed_port_url()

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: adapter.invoke_llm(ask()), base_url=base_url)


def test_a_stream_cut_off_mid_way_is_a_connection_error(fake):
    fake.say(Turn(text="one two three four five six seven", drop_after=2))

    with pytest.raises(errors.InvokeConnectionError):
        run(fake, lambda adapter: collect(MODEL, adapter.stream_llm(ask())))
