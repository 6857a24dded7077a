import asyncio
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from django.db import IntegrityError

from apps.providers import services
from apps.providers.instance import ModelInstance, ModelRef
from apps.providers.models import UsageRecord
from apps.providers.runtime import errors
from apps.providers.runtime.types import LLMRequest, Message, TextDelta
from apps.tenants.models import Role
from tests.fakes.openai import FakeOpenAI, openai_error
from tests.providers.conftest import FAKE_KEY

pytestmark = pytest.mark.django_db(transaction=True)


def ask(text: str = "hello there", **params) -> LLMRequest:
    return LLMRequest(model="", messages=[Message("user", text)], parameters=params)


def instance(team, model="gpt-4o-mini", **kwargs) -> ModelInstance:
    return ModelInstance(workspace=team.workspace, provider="openai", model=model, **kwargs)


def stream(inst: ModelInstance, request: LLMRequest):
    async def run():
        return [event async for event in inst.stream_llm(request)]

    return async_to_sync(run)()


def test_a_blocking_call_answers_and_is_priced_from_the_catalog(openai_ready):
    result = instance(openai_ready).invoke_llm_sync(ask("hello there"))
    assert result.text == "You said: hello there"
    record = UsageRecord.objects.get(source="api")
    assert record.model == "gpt-4o-mini" and record.status == "success"
    assert record.input_tokens == result.usage.input_tokens > 0
    assert record.output_tokens == result.usage.output_tokens > 0
    # gpt-4o-mini: $0.15 in / $0.60 out per million tokens
    expected = (
        Decimal(record.input_tokens) * Decimal("0.15") + record.output_tokens * Decimal("0.6")
    ) / 1_000_000
    assert record.price == expected.quantize(Decimal("0.0000001"))


def test_a_stream_arrives_in_pieces_with_usage_and_time_to_first_token(openai_ready):
    events = stream(instance(openai_ready, user_id=openai_ready.owner.pk), ask("stream me"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 1 and "".join(deltas) == "You said: stream me"
    record = UsageRecord.objects.get()
    assert record.ttft_ms is not None and record.latency_ms >= record.ttft_ms
    assert record.user_id == openai_ready.owner.pk and record.output_tokens > 0


def test_a_provider_that_sends_no_usage_is_counted_by_estimate(openai_ready, fake_openai):
    fake_openai.stream_usage = False
    stream(instance(openai_ready), ask("count this please"))
    record = UsageRecord.objects.get()
    assert record.input_tokens > 0 and record.output_tokens > 0


def test_a_stream_cut_mid_way_is_an_error_after_the_text_that_arrived(openai_ready, fake_openai):
    fake_openai.drop_after = 3
    received = []

    async def run():
        async for event in instance(openai_ready).stream_llm(ask("a longer question here")):
            received.append(event)

    with pytest.raises(errors.InvokeConnectionError):
        async_to_sync(run)()
    assert any(isinstance(e, TextDelta) for e in received)
    assert UsageRecord.objects.get().status == "provider_connection_error"


def test_bad_parameters_are_not_retried_elsewhere(openai_ready, fake_openai):
    fake_openai.queue(openai_error(400, "max_tokens is too large"))
    with pytest.raises(errors.InvokeBadRequestError) as refused:
        instance(openai_ready).invoke_llm_sync(ask())
    assert "max_tokens is too large" in str(refused.value)
    assert UsageRecord.objects.get().status == "provider_bad_request"


def test_a_blocking_call_survives_one_server_error(openai_ready, fake_openai):
    fake_openai.queue(openai_error(503, "The engine is currently overloaded"))
    assert instance(openai_ready).invoke_llm_sync(ask("again")).text == "You said: again"
    assert UsageRecord.objects.get().status == "success"


def test_a_fallback_model_answers_when_the_first_is_down(openai_ready, fake_openai):
    overloaded = openai_error(503, "The engine is currently overloaded")
    fake_openai.queue(overloaded, overloaded)  # the first model fails, and its one retry
    inst = instance(openai_ready, fallbacks=[ModelRef("openai", "gpt-4o")])
    result = inst.invoke_llm_sync(ask("anyone there"))
    assert result.text == "You said: anyone there"
    statuses = list(UsageRecord.objects.order_by("created_at").values_list("model", "status"))
    assert statuses == [("gpt-4o-mini", "provider_unavailable"), ("gpt-4o", "success")]


def test_a_fallback_no_longer_set_up_is_passed_over(openai_ready, fake_openai):
    overloaded = openai_error(503, "The engine is currently overloaded")
    fake_openai.queue(overloaded, overloaded)
    gone = ModelRef("anthropic", "claude-sonnet-4-5")  # no Anthropic credentials here
    inst = instance(openai_ready, fallbacks=[gone, ModelRef("openai", "gpt-4o")])
    assert inst.invoke_llm_sync(ask("still there")).text == "You said: still there"
    assert inst.answered_by.model == "gpt-4o"
    fake_openai.queue(overloaded, overloaded)
    only_gone = instance(openai_ready, fallbacks=[gone])
    with pytest.raises(errors.InvokeServerUnavailableError):  # the model's own error
        only_gone.invoke_llm_sync(ask("and now"))


def test_embeddings_are_batched_and_keep_their_order(openai_ready, fake_openai):
    texts = [f"passage number {i}" for i in range(5)]
    inst = instance(openai_ready, model="text-embedding-3-small", model_type="text-embedding")
    result = async_to_sync(inst.invoke_text_embedding)(texts)
    single = async_to_sync(inst.invoke_text_embedding)([texts[3]])
    assert len(result.vectors) == 5
    assert result.vectors[3] == single.vectors[0]


def test_an_unconfigured_provider_says_how_to_set_it_up(team):
    inst = ModelInstance(
        workspace=team.workspace, provider="anthropic", model="claude-sonnet-4-5-20250929"
    )
    with pytest.raises(Exception, match="Settings → Model providers"):
        inst.invoke_llm_sync(ask())


# --- Load balancing ------------------------------------------------------------------


def _two_sets(team, first_url: str, second_url: str, second_key: str = FAKE_KEY):
    owner = team.members[Role.OWNER]
    for name, url, key in (("first", first_url, FAKE_KEY), ("second", second_url, second_key)):
        services.credential_set_add(
            actor=owner,
            provider="openai",
            model_type="llm",
            model="gpt-4o-mini",
            name=name,
            credentials={"openai_api_key": key, "openai_api_base": url},
            validate=key == FAKE_KEY,
        )


def test_round_robin_spreads_calls_over_credential_sets(openai_ready, fake_openai):
    with FakeOpenAI(api_key=FAKE_KEY) as second:
        _two_sets(openai_ready, fake_openai.url, second.url)
        before = len(fake_openai.requests), len(second.requests)
        for _ in range(6):
            instance(openai_ready).invoke_llm_sync(ask())
        served = len(fake_openai.requests) - before[0], len(second.requests) - before[1]
    assert served == (3, 3)


def test_a_rate_limited_set_cools_down_and_calls_move_on(openai_ready, fake_openai):
    with FakeOpenAI(api_key=FAKE_KEY) as second:
        _two_sets(openai_ready, fake_openai.url, second.url)
        fake_openai.queue(openai_error(429, "Rate limit reached"))
        results = [instance(openai_ready).invoke_llm_sync(ask(f"q{i}")).text for i in range(4)]
    assert results == [f"You said: q{i}" for i in range(4)]
    served = list(UsageRecord.objects.order_by("created_at").values_list("credential", "status"))
    limited = served.index(("first", "provider_rate_limited"))
    # once limited, the first set cools down: every later call goes to the second one
    assert all(entry == ("second", "success") for entry in served[limited + 1 :])
    assert len([s for s in served if s[1] == "success"]) == 4


def test_a_set_with_a_revoked_key_is_skipped(openai_ready, fake_openai):
    _two_sets(openai_ready, fake_openai.url, fake_openai.url, second_key="sk-revoked")
    for _ in range(4):
        assert instance(openai_ready).invoke_llm_sync(ask()).text
    failures = UsageRecord.objects.filter(status="provider_auth_failed")
    assert list(failures.values_list("credential", flat=True)) == ["second"]  # then cooled


def test_least_busy_sends_the_next_call_to_the_idle_set(openai_ready, fake_openai):
    from apps.providers import balancing
    from apps.providers.resolution import resolve

    _two_sets(openai_ready, fake_openai.url, fake_openai.url)
    services.model_settings_update(
        actor=openai_ready.members[Role.OWNER],
        provider="openai",
        model_type="llm",
        model="gpt-4o-mini",
        load_balancing="least_busy",
    )
    target = resolve(
        workspace=openai_ready.workspace, provider="openai", model_type="llm", model="gpt-4o-mini"
    )
    first, second = target.choices
    with balancing.in_flight(target, first):
        assert balancing.attempt_order(target)[0] == second
    with balancing.in_flight(target, second):
        assert balancing.attempt_order(target)[0] == first


def test_many_streams_ending_together_are_each_in_the_ledger(openai_ready):
    questions = [f"question number {n}" for n in range(30)]

    async def run_all():
        async def one(text):
            return [e async for e in instance(openai_ready).stream_llm(ask(text))]

        return await asyncio.gather(*(one(text) for text in questions))

    answers = async_to_sync(run_all)()
    assert len(answers) == 30
    records = UsageRecord.objects.filter(status="success")
    assert records.count() == 30
    assert sorted(records.values_list("output_tokens", flat=True))[0] > 0


def test_a_ledger_row_that_cannot_be_saved_fails_alone(openai_ready):
    """A row whose user was deleted during the call is refused by its foreign key; the
    rows saved in the same write are kept, and only that call hears of the failure."""
    from apps.providers.resolution import resolve
    from apps.providers.runtime.types import Usage
    from apps.providers.usage import usage_row, usage_save

    target = resolve(
        workspace=openai_ready.workspace, provider="openai", model_type="llm", model="gpt-4o-mini"
    )
    owner_id = openai_ready.owner.pk
    users = [owner_id, uuid.uuid4(), owner_id]  # the second: a user deleted meanwhile

    async def save_all():
        rows = [
            usage_row(target=target, choice=None, usage=Usage(1, 2), latency_ms=5, user_id=u)
            for u in users
        ]
        return await asyncio.gather(*(usage_save(row) for row in rows), return_exceptions=True)

    outcomes = async_to_sync(save_all)()
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], IntegrityError)
    assert list(UsageRecord.objects.values_list("user_id", flat=True)) == [owner_id, owner_id]
