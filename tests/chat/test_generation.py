"""The generation pipeline: a turn streams from the model, is saved once, can be
followed by several watchers and stopped; the app's features shape the prompt."""

import asyncio

import pytest
from asgiref.sync import async_to_sync

from apps.chat import generation
from apps.chat.models import Message, MessageStatus
from apps.core.errors import DomainError, NotFound
from tests.chat.conftest import answer_of, converse, make_app

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_chat_turn_streams_the_answer_and_saves_it(chat_app, end_user):
    run, events = converse(chat_app, query="hello there", end_user=end_user)
    assert answer_of(events) == "You said: hello there"
    assert len([e for e in events if isinstance(e, generation.AnswerChunk)]) > 1
    end = events[-1]
    assert isinstance(end, generation.MessageEnd) and end.status == "normal"
    assert end.metadata["usage"]["total_tokens"] > 0
    message = Message.objects.get(pk=run.message_id)
    assert message.status == MessageStatus.NORMAL
    assert message.answer == "You said: hello there"
    assert message.answer_tokens > 0 and message.total_price > 0
    assert message.first_token_latency is not None and message.latency > 0
    assert str(message.conversation_id) == run.conversation_id
    envelope = run.envelope(events[0])
    assert envelope["event"] == "message" and envelope["task_id"] == run.task_id
    assert envelope["conversation_id"] == run.conversation_id


def test_the_second_turn_sees_the_first_in_its_history(chat_app, end_user, fake_openai):
    first, _ = converse(chat_app, query="my name is Ada", end_user=end_user)
    converse(chat_app, query="who am I", end_user=end_user, conversation_id=first.conversation_id)
    sent = fake_openai.requests[-1].json()["messages"]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
    assert sent[0]["content"] == "You are terse."
    assert sent[1]["content"] == "my name is Ada"


def test_regenerating_starts_a_branch_without_the_sibling(chat_app, end_user, fake_openai):
    first, _ = converse(chat_app, query="one", end_user=end_user)
    cid = first.conversation_id
    converse(chat_app, query="two", end_user=end_user, conversation_id=cid)
    converse(
        chat_app,
        query="two again",
        end_user=end_user,
        conversation_id=cid,
        parent_message_id=first.message_id,
    )
    sent = [m["content"] for m in fake_openai.requests[-1].json()["messages"]]
    assert "two" not in sent and sent[-1] == "two again" and "one" in sent


def test_memory_window_keeps_only_the_newest_turns(openai_ready, fake_openai):
    app = make_app(openai_ready, "chat", memory={"window": {"enabled": True, "size": 1}})
    first, _ = converse(app, query="alpha")
    converse(app, query="beta", conversation_id=first.conversation_id)
    converse(app, query="gamma", conversation_id=first.conversation_id)
    sent = [m["content"] for m in fake_openai.requests[-1].json()["messages"]]
    assert "alpha" not in sent and "beta" in sent


def test_memory_by_tokens_drops_the_oldest_turns_that_do_not_fit(openai_ready, fake_openai):
    app = make_app(openai_ready, "chat", memory={"max_tokens": 30})
    first, _ = converse(app, query="alpha " * 20)  # about as long as the whole budget
    converse(app, query="beta", conversation_id=first.conversation_id)
    converse(app, query="gamma", conversation_id=first.conversation_id)
    sent = [m["content"] for m in fake_openai.requests[-1].json()["messages"]]
    assert not any("alpha" in text for text in sent)
    assert "beta" in sent and sent[-1] == "gamma"


def test_a_conversation_of_someone_else_is_not_found(chat_app, end_user):
    from apps.chat.models import EndUser

    first, _ = converse(chat_app, query="secret", end_user=end_user)
    stranger = EndUser.objects.create(
        workspace=chat_app.workspace, app=chat_app, source="service_api", session_id="other"
    )
    with pytest.raises(NotFound, match="Conversation Not Exists"):
        converse(chat_app, query="hi", end_user=stranger, conversation_id=first.conversation_id)


def test_completion_inputs_are_checked_and_fill_the_template(openai_ready, fake_openai):
    form = [
        {"text-input": {"label": "Topic", "variable": "topic", "required": True, "max_length": 10}},
        {"select": {"label": "Tone", "variable": "tone", "options": ["dry", "warm"]}},
    ]
    app = make_app(
        openai_ready, "completion", user_input_form=form, pre_prompt="Write about {{topic}}"
    )
    with pytest.raises(DomainError, match="topic is required"):
        converse(app, inputs={})
    with pytest.raises(DomainError, match="at most 10 characters"):
        converse(app, inputs={"topic": "x" * 11})
    with pytest.raises(DomainError, match="one of the following: dry, warm"):
        converse(app, inputs={"topic": "owls", "tone": "loud"})
    run, events = converse(app, inputs={"topic": "owls"})
    assert answer_of(events) == "You said: Write about owls"
    assert run.conversation_id is None
    assert Message.objects.count() == 1  # refused turns left nothing behind


def test_an_app_without_a_model_is_unavailable(openai_ready):
    app = make_app(openai_ready, "chat", model={"provider": "", "name": ""})
    with pytest.raises(DomainError) as caught:
        converse(app, query="hi")
    assert caught.value.code == "app_unavailable"


def test_stop_sequences_and_parameters_reach_the_model(openai_ready, fake_openai):
    model = {
        "provider": "openai",
        "name": "gpt-4o-mini",
        "mode": "chat",
        "completion_params": {"temperature": 0.2, "max_tokens": 3},
    }
    app = make_app(openai_ready, "chat", model=model, stop=["STOP"])
    _, events = converse(app, query="a b c d e f")
    body = fake_openai.requests[-1].json()
    assert body["temperature"] == 0.2 and body["stop"] == ["STOP"]
    assert answer_of(events) == "You said: a"  # three tokens: max_tokens was honoured


def test_keyword_moderation_answers_with_the_canned_reply(openai_ready, fake_openai):
    moderation = {
        "enabled": True,
        "type": "keywords",
        "config": {
            "keywords": "forbidden\nbanned",
            "inputs_config": {"enabled": True, "preset_response": "Not here."},
            "outputs_config": {"enabled": True, "preset_response": "Redacted."},
        },
    }
    app = make_app(openai_ready, "chat", sensitive_word_avoidance=moderation)
    calls = len(fake_openai.requests)
    _, events = converse(app, query="tell me the Forbidden thing")
    assert answer_of(events) == "Not here." and len(fake_openai.requests) == calls
    moderation["config"]["inputs_config"]["enabled"] = False
    app.config["sensitive_word_avoidance"] = moderation
    app.save()
    run, events = converse(app, query="say banned")
    assert any(isinstance(e, generation.AnswerReplaced) for e in events)
    assert answer_of(events) == "Redacted."
    assert Message.objects.get(pk=run.message_id).answer == "Redacted."


def test_model_moderation_flags_the_input(openai_ready, fake_openai):
    moderation = {
        "enabled": True,
        "type": "openai_moderation",
        "config": {
            "model": {"provider": "openai", "name": "omni-moderation-latest"},
            "inputs_config": {"enabled": True, "preset_response": "Be kind."},
        },
    }
    app = make_app(openai_ready, "chat", sensitive_word_avoidance=moderation)
    _, events = converse(app, query="I will hurt you")
    assert answer_of(events) == "Be kind."
    _, events = converse(app, query="lovely day")
    assert answer_of(events) == "You said: lovely day"


def test_annotation_reply_answers_without_the_model(openai_ready, fake_openai):
    from apps.chat.models import Annotation

    reply = {
        "enabled": True,
        "score_threshold": 0.9,
        "embedding_model": {
            "embedding_provider_name": "openai",
            "embedding_model_name": "text-embedding-3-small",
        },
    }
    app = make_app(openai_ready, "chat", annotation_reply=reply)
    note = Annotation.objects.create(
        workspace=app.workspace, app=app, question="What are your hours?", answer="9 to 5."
    )
    _, events = converse(app, query="What are your hours?")
    assert answer_of(events) == "9 to 5."
    assert events[-1].metadata["annotation_reply"]["id"] == str(note.pk)
    chats = [r for r in fake_openai.requests if r.path.endswith("/chat/completions")]
    assert chats == []
    note.refresh_from_db()
    assert note.hit_count == 1
    _, events = converse(app, query="Something else entirely")
    assert answer_of(events) == "You said: Something else entirely"


def test_suggested_questions_follow_the_answer(openai_ready):
    app = make_app(openai_ready, "chat", suggested_questions_after_answer={"enabled": True})
    run, events = converse(app, query="hi")
    assert isinstance(events[-1], generation.SuggestedQuestions) and events[-1].questions
    assert Message.objects.get(pk=run.message_id).suggested_questions == events[-1].questions


def test_a_provider_error_ends_the_turn_with_an_error_event(chat_app, fake_openai):
    from tests.fakes.openai import openai_error

    fake_openai.queue(openai_error(400, "bad things"))
    run, events = converse(chat_app, query="hi")
    assert isinstance(events[-1], generation.GenerationFailed)
    assert events[-1].code == "completion_request_error"
    assert Message.objects.get(pk=run.message_id).status == MessageStatus.ERROR


def _slow(fake_openai):
    fake_openai.chunk_delay = 0.05


def test_two_watchers_see_the_same_answer_and_a_late_one_gets_the_text_so_far(
    chat_app, fake_openai
):
    _slow(fake_openai)

    async def go():
        run = await generation.start(
            app=chat_app, query="one two three four five", from_source="api"
        )
        first = []

        async def watch():
            async for event in generation.events(run):
                first.append(event)

        watching = asyncio.create_task(watch())
        while len(first) < 2:
            await asyncio.sleep(0.01)
        late = await _collect(generation.events(run.task_id))
        await watching
        return run, first, late

    run, first, late = async_to_sync(go)()
    assert answer_of(first) == answer_of(late) == "You said: one two three four five"
    assert len(late[0].answer) > len(first[0].answer)  # caught up in one piece


async def _collect(stream):
    return [event async for event in stream]


def test_the_run_goes_on_when_its_watcher_leaves(chat_app, fake_openai):
    _slow(fake_openai)

    async def go():
        run = await generation.start(app=chat_app, query="keep going please", from_source="api")
        async for _ in generation.events(run):
            break  # the client went away after the first piece
        await run.task
        return run

    run = async_to_sync(go)()
    message = Message.objects.get(pk=run.message_id)
    assert message.status == MessageStatus.NORMAL
    assert message.answer == "You said: keep going please"


def test_stop_saves_the_partial_answer(chat_app, fake_openai):
    _slow(fake_openai)

    async def go():
        run = await generation.start(
            app=chat_app, query="a b c d e f g h i j k l m n o p", from_source="api"
        )
        seen = []
        async for event in generation.events(run):
            seen.append(event)
            if len(seen) == 2:
                await generation.stop(run.task_id)
        return run, seen

    run, seen = async_to_sync(go)()
    assert isinstance(seen[-1], generation.MessageEnd) and seen[-1].status == "stopped"
    message = Message.objects.get(pk=run.message_id)
    assert message.status == MessageStatus.STOPPED
    assert message.answer and len(message.answer) < len("You said: a b c d e f g h i j k l m n o p")


def test_a_finished_run_is_replayed_from_the_database(chat_app):
    run, _ = converse(chat_app, query="remember me")
    from apps.chat.generation import fanout

    fanout._runs.pop(run.task_id, None)

    async def go():
        return await _collect(generation.events(run.task_id))

    events = async_to_sync(go)()
    assert answer_of(events) == "You said: remember me"
    assert isinstance(events[-1], generation.MessageEnd)


def test_knowledge_context_reaches_the_prompt_and_the_citations(openai_ready, fake_openai):
    from apps.datasets.models import IndexingTechnique
    from tests.datasets.conftest import add_document, make_search_dataset

    base = make_search_dataset(
        openai_ready, name="Billing", indexing_technique=IndexingTechnique.ECONOMY
    )
    add_document(base, ["Refunds are paid back to the card within ten days."])
    configs = {
        "retrieval_model": "multiple",
        "top_k": 2,
        "datasets": {"datasets": [{"dataset": {"enabled": True, "id": str(base.id)}}]},
    }
    app = make_app(openai_ready, "chat", dataset_configs=configs)
    run, events = converse(app, query="how are refunds paid")
    system = fake_openai.requests[-1].json()["messages"][0]["content"]
    assert "within ten days" in system
    resources = events[-1].metadata["retriever_resources"]
    assert resources[0]["dataset_name"] == "Billing"
    assert Message.objects.get(pk=run.message_id).retriever_resources == resources
    app.config["retriever_resource"] = {"enabled": False}
    app.save()
    _, events = converse(app, query="how are refunds paid")
    assert "retriever_resources" not in events[-1].metadata


def test_knowledge_beyond_the_context_budget_is_left_out_of_prompt_and_citations(
    openai_ready, fake_openai
):
    from apps.datasets.models import IndexingTechnique
    from apps.providers.tokens import estimate_tokens
    from tests.datasets.conftest import add_document, make_search_dataset

    base = make_search_dataset(
        openai_ready, name="Billing", indexing_technique=IndexingTechnique.ECONOMY
    )
    first = "Refunds are paid to the card. " + "alpha " * 250
    second = "Refunds for vouchers are paid as credit. " + "omega " * 250
    add_document(base, [first, second])
    passage = max(estimate_tokens(first), estimate_tokens(second))
    configs = {
        "retrieval_model": "multiple",
        "top_k": 2,
        "datasets": {"datasets": [{"dataset": {"enabled": True, "id": str(base.id)}}]},
    }
    # Room for the prompt, the query and one passage, not two.
    max_tokens = 128_000 - 100 - int(passage * 1.5)
    app = make_app(
        openai_ready,
        "chat",
        dataset_configs=configs,
        model={
            "provider": "openai",
            "name": "gpt-4o-mini",
            "mode": "chat",
            "completion_params": {"max_tokens": max_tokens},
        },
    )
    run, events = converse(app, query="how are refunds paid")
    system = fake_openai.requests[-1].json()["messages"][0]["content"]
    resources = events[-1].metadata["retriever_resources"]
    assert len(resources) == 1
    assert ("alpha" in system) != ("omega" in system)
    assert resources[0]["content"].split()[-1] in system


def test_the_debugger_runs_an_unsaved_configuration(chat_app, fake_openai, team):
    draft = {**chat_app.config, "pre_prompt": "Draft prompt"}
    run, events = converse(
        chat_app, query="try it", from_source="debugger", user=team.owner, config_override=draft
    )
    assert fake_openai.requests[-1].json()["messages"][0]["content"] == "Draft prompt"
    chat_app.refresh_from_db()
    assert chat_app.config["pre_prompt"] == "You are terse."
    message = Message.objects.get(pk=run.message_id)
    assert message.from_source == "debugger" and message.user == team.owner


def test_a_follower_by_task_id_gets_the_live_run(chat_app, end_user):
    from apps.chat.services.messages import message_by_task

    run, _ = converse(chat_app, query="hi", end_user=end_user)
    message = message_by_task(app=chat_app, end_user=end_user, task_id=run.task_id)
    assert generation.run_for_message(message) is not None
    assert (
        generation.run_for_message(message).envelope(generation.AnswerChunk("x"))["conversation_id"]
        == run.conversation_id
    )
    with pytest.raises(NotFound):
        message_by_task(app=chat_app, end_user=None, task_id=run.task_id)


def test_a_turn_orphaned_by_a_restart_is_reported_as_interrupted(chat_app):
    from datetime import timedelta

    from django.utils import timezone

    orphan = Message.objects.create(
        workspace=chat_app.workspace,
        app=chat_app,
        from_source="api",
        query="lost",
        answer="half an ans",
        status=MessageStatus.RUNNING,
    )
    Message.objects.filter(pk=orphan.pk).update(created_at=timezone.now() - timedelta(seconds=1300))

    async def go():
        return await _collect(generation.events(str(orphan.task_id)))

    events = async_to_sync(go)()
    assert answer_of(events) == "half an ans"
    assert isinstance(events[-1], generation.GenerationFailed)
    assert Message.objects.get(pk=orphan.pk).status == MessageStatus.ERROR


def test_model_moderation_cuts_a_flagged_answer_while_it_streams(openai_ready, fake_openai):
    moderation = {
        "enabled": True,
        "type": "openai_moderation",
        "config": {
            "model": {"provider": "openai", "name": "omni-moderation-latest"},
            "inputs_config": {"enabled": False},
            "outputs_config": {"enabled": True, "preset_response": "Withheld."},
        },
    }
    app = make_app(openai_ready, "chat", sensitive_word_avoidance=moderation)
    fake_openai.chunk_delay = 0.02
    query = "I will hurt " + " ".join(f"word{i}" for i in range(150))
    run, events = converse(app, query=query)
    replaced = [e for e in events if isinstance(e, generation.AnswerReplaced)]
    assert len(replaced) == 1 and answer_of(events) == "Withheld."
    chunks = [e for e in events if isinstance(e, generation.AnswerChunk)]
    assert len(chunks) < 150  # cut before the model finished
    assert Message.objects.get(pk=run.message_id).answer == "Withheld."


def test_numbers_and_files_are_checked(openai_ready):
    form = [{"number": {"label": "Count", "variable": "count", "required": True}}]
    app = make_app(openai_ready, "completion", user_input_form=form, pre_prompt="{{count}} ideas")
    with pytest.raises(DomainError, match="count in input form must be a number"):
        converse(app, inputs={"count": "many"})
    _, events = converse(app, inputs={"count": "3"})
    assert answer_of(events) == "You said: 3 ideas"
    image = {"type": "image", "transfer_method": "remote_url", "url": "https://example.com/a.png"}
    chat = make_app(openai_ready, "chat")
    with pytest.raises(DomainError, match="does not accept files"):
        converse(chat, query="look", files=[image])
    chat.config["file_upload"] = {"image": {"enabled": True, "number_limits": 1}}
    chat.save()
    with pytest.raises(DomainError, match="At most 1 images"):
        converse(chat, query="look", files=[image, image])
    with pytest.raises(DomainError, match="transfer_method"):
        converse(chat, query="look", files=[{"type": "image", "transfer_method": "ftp"}])


def test_regenerating_the_first_answer_starts_a_new_root(chat_app, end_user, fake_openai):
    first, _ = converse(chat_app, query="only question", end_user=end_user)
    again, _ = converse(
        chat_app,
        query="only question",
        end_user=end_user,
        conversation_id=first.conversation_id,
        parent_message_id=generation.NO_PARENT,
    )
    assert Message.objects.get(pk=again.message_id).parent_message_id is None
    sent = [m["content"] for m in fake_openai.requests[-1].json()["messages"]]
    assert sent == ["You are terse.", "only question"]  # no earlier answer in the prompt
