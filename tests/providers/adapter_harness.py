"""What every adapter test needs: a fake provider per module, one call through the adapter
with a fresh HTTP client and event loop, and the blocking/streaming pair of modes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from types import EllipsisType
from typing import Any

import httpx
import pytest

from apps.providers.runtime import errors
from apps.providers.runtime.adapters.base import Adapter, Connection, collect
from apps.providers.runtime.types import LLMRequest, Message
from tests.fakes.server import FakeProvider

Action = Callable[[Any], Awaitable[Any]]
MODES = pytest.mark.parametrize("streaming", [False, True], ids=["blocking", "streaming"])


def fake_fixtures(start: Callable[[], FakeProvider], *, name: str = "fake"):
    """Fixtures `<name>_server`, one fake per module (stopping one takes half a second), and
    `<name>`, that fake started afresh for each test. Assign both to the same names:
    `fake_server, fake = fake_fixtures(FakeOllama)`."""

    @pytest.fixture(scope="module", name=f"{name}_server")
    def server() -> Iterator[FakeProvider]:
        with start() as running:
            yield running

    @pytest.fixture(name=name)
    def fake(request: pytest.FixtureRequest) -> FakeProvider:
        running = request.getfixturevalue(f"{name}_server")
        running.reset()
        return running

    return server, fake


@dataclass(frozen=True)
class AdapterHarness:
    """One protocol's adapter against its fake: `base_path` turns the fake's root URL into
    the Connection's base_url; `model` and `prompt` make the default request of `ask`."""

    adapter: type[Adapter]
    base_path: str
    provider: str
    api_key: str | None
    model: str = ""
    prompt: str = "Hello?"

    def run(
        self,
        fake: FakeProvider | None,
        action: Action,
        *,
        base_url: str | None = None,
        api_key: str | None | EllipsisType = ...,
        credentials: dict | None = None,
    ) -> Any:
        """`action(adapter)` on a connection to `fake` (or to `base_url`), with the
        harness's key unless `api_key` is given (None: no key)."""

        async def main():
            async with httpx.AsyncClient(timeout=5) as http:
                connection = Connection(
                    base_url=base_url or fake.url + self.base_path,
                    api_key=self.api_key if api_key is ... else api_key,
                    credentials=credentials or {},
                    http=http,
                    provider=self.provider,
                )
                return await action(self.adapter(connection))

        return asyncio.run(main())

    def complete(
        self, fake: FakeProvider | None, request: LLMRequest, streaming: bool = False, **connection
    ) -> Any:
        """The LLMResult of `request`, asked for in one piece or folded from the stream."""
        if streaming:
            return self.run(
                fake,
                lambda adapter: collect(request.model, adapter.stream_llm(request)),
                **connection,
            )
        return self.run(fake, lambda adapter: adapter.invoke_llm(request), **connection)

    def ask(self, text: str | None = None, model: str | None = None, **kwargs) -> LLMRequest:
        content = self.prompt if text is None else text
        return LLMRequest(
            model=model or self.model, messages=[Message(role="user", content=content)], **kwargs
        )


async def gather(stream: AsyncIterator) -> list:
    return [item async for item in stream]


async def gather_until_error(stream: AsyncIterator) -> tuple[list, errors.InvokeError | None]:
    seen = []
    try:
        async for item in stream:
            seen.append(item)
    except errors.InvokeError as exc:
        return seen, exc
    return seen, None


def closed_port_url(path: str = "") -> str:
    """A loopback URL nothing listens at (the port is closed again before use)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
