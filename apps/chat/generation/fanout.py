"""Following a run: any number of watchers, in this process or (with REDIS_URL) in
another, each getting the text so far first and then every event as it happens.

In-process watchers read the Run directly (one asyncio queue each). When the deployment
is shared (Redis), the producer also publishes batches of events to a channel-layer group
per task and keeps the text so far in the cache, so a watcher in another process (a
second tab on another worker) can catch up and follow; stop requests travel as a cache
flag that the producer polls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import suppress
from dataclasses import dataclass, field

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache

from apps.chat.generation import events as ev

KEEP_FINISHED = 120  # seconds a finished run stays in memory for late watchers
PUBLISH_INTERVAL = 0.05  # seconds between batches to other processes
STOP_POLL = 0.3  # seconds between looks at the shared stop flag
SNAPSHOT_TTL = 3600
REMOTE_IDLE = 30  # seconds a remote watcher waits for news before checking the database

_CLOSED = object()
CLOSED_EVENT = "__closed__"  # the last item published to other processes
_runs: dict[str, Run] = {}


def shared() -> bool:
    """Whether other processes may be watching (a shared Redis channel layer)."""
    return bool(getattr(settings, "REDIS_URL", ""))


def group_name(task_id: str) -> str:
    return f"chatgen.{task_id}"


def _snapshot_key(task_id: str) -> str:
    return f"chatgen:text:{task_id}"


def _stop_key(task_id: str) -> str:
    return f"chatgen:stop:{task_id}"


@dataclass(eq=False)
class Run:
    """One generation in progress (or just finished) in this process."""

    task_id: str
    message_id: str
    conversation_id: str | None
    mode: str
    created_at: int = field(default_factory=lambda: int(time.time()))
    answer: str = ""  # the text so far, as watchers should see it
    finished: bool = False
    closing: list = field(default_factory=list)  # MessageEnd/GenerationFailed and after
    task: asyncio.Task | None = None
    _watchers: set = field(default_factory=set)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _outbox: list = field(default_factory=list)  # for other processes
    _remote: bool = field(default_factory=lambda: shared())  # once a run, not once a token
    _publisher: asyncio.Task | None = None

    def envelope(self, event: ev.Event) -> dict:
        """The event as the Service API sends it (Dify's field names)."""
        data = {
            "event": event.event,
            "task_id": self.task_id,
            "id": self.message_id,
            "message_id": self.message_id,
        }
        if self.conversation_id:
            data["conversation_id"] = self.conversation_id
        data.update(ev.dify_payload(event))
        data["created_at"] = self.created_at
        return data

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    # --- producer side --------------------------------------------------------------
    def publish(self, event: ev.Event) -> None:
        if isinstance(event, ev.AnswerChunk):
            offset = len(self.answer)
            self.answer += event.answer
        elif isinstance(event, ev.AnswerReplaced):
            offset = None
            self.answer = event.answer
        else:
            offset = None
            self.closing.append(event)
        for queue in self._watchers:
            queue.put_nowait(event)
        if self._remote:
            self._outbox.append({**ev.to_dict(event), "offset": offset})
            if self._publisher is None:
                self._publisher = asyncio.create_task(self._publish_loop())

    async def close(self) -> None:
        """No more events: watchers end, other processes get the last batch."""
        self.finished = True
        for queue in self._watchers:
            queue.put_nowait(_CLOSED)
        self._watchers.clear()
        if self._remote:
            self._outbox.append({"event": CLOSED_EVENT, "offset": None})
        if self._publisher is not None:
            self._publisher.cancel()
            with suppress(asyncio.CancelledError):
                await self._publisher
        await self._flush_remote()
        asyncio.get_running_loop().call_later(KEEP_FINISHED, _runs.pop, self.task_id, None)

    async def _publish_loop(self) -> None:
        while True:
            await self._flush_remote()
            await asyncio.sleep(PUBLISH_INTERVAL)

    async def _flush_remote(self) -> None:
        if not self._outbox:
            return
        batch, self._outbox = self._outbox, []
        await cache.aset(_snapshot_key(self.task_id), self.answer, SNAPSHOT_TTL)
        await get_channel_layer().group_send(
            group_name(self.task_id), {"type": "chatgen.events", "events": batch}
        )

    async def wait_for_stop(self) -> None:
        """Returns when someone asked this run to stop, here or in another process."""
        if not shared():
            await self._stop.wait()
            return
        while not self._stop.is_set():
            if await cache.aget(_stop_key(self.task_id)):
                self._stop.set()
                break
            with suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), STOP_POLL)

    # --- watcher side -----------------------------------------------------------------
    async def follow(self) -> AsyncIterator[ev.Event]:
        queue: asyncio.Queue = asyncio.Queue()
        # No await between reading the state and joining: nothing can slip in between.
        if self.answer:
            queue.put_nowait(ev.AnswerChunk(self.answer))
        for event in self.closing:
            queue.put_nowait(event)
        if self.finished:
            queue.put_nowait(_CLOSED)
        else:
            self._watchers.add(queue)
        try:
            while (event := await queue.get()) is not _CLOSED:
                yield event
        finally:
            self._watchers.discard(queue)


def register(run: Run) -> None:
    _runs[run.task_id] = run


def local(task_id: str) -> Run | None:
    return _runs.get(str(task_id))


async def request_stop(task_id: str) -> None:
    run = local(task_id)
    if run is not None:
        run._stop.set()
    if shared():
        await cache.aset(_stop_key(str(task_id)), 1, SNAPSHOT_TTL)


async def follow_remote(task_id: str, finished) -> AsyncIterator[ev.Event]:
    """Follow a run produced by another process. `finished()` (async) returns the saved
    turn's closing events once the run is over in the database, else None."""
    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(group_name(task_id), channel)
    try:
        saved = await finished()
        if saved is not None:
            for event in saved:
                yield event
            return
        seen = await cache.aget(_snapshot_key(task_id)) or ""
        if seen:
            yield ev.AnswerChunk(seen)
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), REMOTE_IDLE)
            except TimeoutError:
                saved = await finished()
                if saved is not None:
                    for event in saved:
                        if not isinstance(event, ev.AnswerChunk):
                            yield event
                    return
                continue
            for data in message.get("events", []):
                offset = data.pop("offset", None)
                if data.get("event") == CLOSED_EVENT:
                    return
                event = ev.from_dict(data)
                if isinstance(event, ev.AnswerChunk):
                    end = offset + len(event.answer)
                    if end <= len(seen):
                        continue  # already in the snapshot
                    text = event.answer[max(0, len(seen) - offset) :]
                    seen += text
                    event = ev.AnswerChunk(text)
                elif isinstance(event, ev.AnswerReplaced):
                    seen = event.answer
                yield event
    finally:
        await layer.group_discard(group_name(task_id), channel)
