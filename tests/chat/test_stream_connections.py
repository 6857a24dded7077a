"""Streamed answers do not hold a database connection each: many Service API streams at
once stay within a small number of connections (the embedded Postgres allows 100)."""

import asyncio
import json
import threading

import httpx
import pytest
from django.db import connection

from apps.chat import keys
from apps.tenants.models import Role
from tests.chat.conftest import make_app

pytestmark = pytest.mark.django_db(transaction=True)

STREAMS = 30


def _connections_to_this_database() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_many_streams_share_a_few_connections(openai_ready, fake_openai, live_server_url):
    app = make_app(openai_ready, "chat", pre_prompt="Be brief.")
    raw = keys.app_api_key_create(actor=openai_ready.members[Role.OWNER], app=app)[1]
    fake_openai.chunk_delay = 0.05  # about 1 s per answer: the streams overlap
    before = _connections_to_this_database()
    counted: list[int] = []
    first_tokens = threading.Event()

    async def one(client: httpx.AsyncClient, index: int) -> str:
        body = {
            "inputs": {},
            "query": "tell me something long enough to take a while",
            "response_mode": "streaming",
            "user": f"user-{index}",
        }
        answer = ""
        async with client.stream("POST", "/v1/chat-messages", json=body) as response:
            assert response.status_code == 200, await response.aread()
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["event"] == "message":
                        answer += event["answer"]
                        first_tokens.set()
        return answer

    async def all_streams():
        headers = {"Authorization": f"Bearer {raw}"}
        async with httpx.AsyncClient(
            base_url=live_server_url, headers=headers, timeout=60
        ) as client:
            return await asyncio.gather(*(one(client, i) for i in range(STREAMS)))

    def watch():
        first_tokens.wait(30)
        try:
            for _ in range(10):  # while the streams run
                counted.append(_connections_to_this_database())
                threading.Event().wait(0.05)
        finally:
            connection.close()  # this thread's own connection

    watcher = threading.Thread(target=watch)
    watcher.start()
    answers = asyncio.run(all_streams())
    watcher.join()
    assert all(a.startswith("You said: tell me") for a in answers)
    assert counted and max(counted) - before < STREAMS // 2, (before, counted)
