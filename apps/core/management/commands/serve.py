import gc
import os

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand

from apps.core.worker import start_embedded_worker


class Command(BaseCommand):
    help = (
        "Apply migrations, then serve Orrery over daphne (HTTP and websockets) with "
        "Dramatiq worker threads in the same process. Ctrl-C stops everything."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--no-migrate", action="store_true")
        parser.add_argument(
            "--no-worker",
            action="store_true",
            default=not settings.ORRERY_INPROCESS_WORKER,
            help="Do not run background workers here (they run under rundramatiq).",
        )

    @staticmethod
    def _daphne_args(host: str, port: int) -> list[str]:
        args = ["--bind", host, "--port", str(port)]
        if settings.BEHIND_TLS_PROXY:
            # Only behind a proxy we trust may X-Forwarded-For set the client address.
            args.append("--proxy-headers")
        return [*args, "config.asgi:application"]

    @staticmethod
    def _send_small_writes_at_once() -> None:
        """Streamed tokens are small writes; with Nagle's algorithm on, each waits for the
        client's delayed ACK (up to 40 ms). Daphne has no option for TCP_NODELAY, so every
        HTTP connection gets it as it is made."""
        from daphne.http_protocol import HTTPFactory

        build = HTTPFactory.buildProtocol

        def build_nodelay(factory, addr):
            protocol = build(factory, addr)
            if protocol is not None:
                made = protocol.connectionMade

                def connection_made():
                    made()
                    protocol.transport.setTcpNoDelay(True)

                protocol.connectionMade = connection_made
            return protocol

        HTTPFactory.buildProtocol = build_nodelay

    @staticmethod
    def _write_through() -> None:
        """Twisted queues every write and sends it when the loop next finds the socket
        writable: two epoll registrations and a loop turn per streamed chunk (an eighth
        of the gateway's CPU at 64 streams). Like asyncio's own transports, a write to a
        socket with nothing queued is tried at once; only what the kernel does not take
        waits for the reactor, in order, through Twisted's own buffer."""
        from twisted.internet import tcp

        queued_write = tcp.Connection.write

        def write(connection, data: bytes) -> None:
            idle = (
                connection.connected
                and not connection.disconnecting
                and not connection._writeDisconnected
                and not connection._tempDataLen
                and connection.offset == len(connection.dataBuffer)
            )
            if not (idle and data and isinstance(data, bytes)):
                queued_write(connection, data)
                return
            sent = connection.writeSomeData(data)
            if isinstance(sent, BaseException):
                queued_write(connection, data)  # the reactor reports the lost connection
            elif sent < len(data):
                queued_write(connection, data[sent:])

        def write_sequence(connection, iovec) -> None:
            write(connection, b"".join(iovec))

        tcp.Connection.write = write
        tcp.Connection.writeSequence = write_sequence

    @staticmethod
    def _cheap_content_type() -> None:
        """Twisted reads every request's Content-Type through the email package (a fifth
        of a millisecond) only to learn whether to parse a form, which daphne never
        reads: the media type alone, split off by hand, tells it as well."""
        from twisted.web import http

        def media_type(line: bytes) -> bytes:
            return line.split(b";", 1)[0].strip().lower()

        http._parseContentType = media_type

    @staticmethod
    def _freeze_startup_objects() -> None:
        """Everything loaded at startup (Django, the apps, the catalog: ~150k objects)
        lives as long as the process; a full garbage collection walking it all stalls
        every stream for a quarter of a second on a busy machine. Frozen, collections
        look only at what requests allocate."""
        from django.utils.module_loading import import_string

        import_string(settings.ASGI_APPLICATION)  # what daphne is about to load
        gc.collect()
        gc.freeze()
        # Streams allocate a few dicts per token; collecting the youngest generation every
        # 700 allocations then runs hundreds of times a second, each pause on some stream's
        # path. Every 50,000 keeps pauses rare and still short.
        gc.set_threshold(50_000, 20, 20)

    def handle(self, *args, host: str, port: int, no_migrate: bool, no_worker: bool, **opts):
        # Imported here: daphne installs the Twisted reactor on import.
        from daphne.cli import CommandLineInterface

        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=1)
        # Load the provider catalog now rather than in the first model call.
        from apps.providers import catalog  # a feature app; core only warms it

        catalog.providers()
        worker = None if no_worker else start_embedded_worker()
        self.stdout.write(
            self.style.SUCCESS(f"Orrery is serving on http://{host}:{port}/  (Ctrl-C stops it)")
        )
        self._send_small_writes_at_once()
        self._cheap_content_type()
        self._write_through()
        self._freeze_startup_objects()
        try:
            CommandLineInterface().run(self._daphne_args(host, port))
        finally:
            if worker is not None:
                worker.stop(timeout=10_000)
