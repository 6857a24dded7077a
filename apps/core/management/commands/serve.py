import argparse
import gc
import os
import signal
import socket
import subprocess
import sys
import time

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.worker import start_embedded_worker


class Command(BaseCommand):
    help = (
        "Apply migrations, then serve Orrery over daphne (HTTP and websockets) with "
        "Dramatiq worker threads in the same process, or in several server processes on "
        "one port (--processes, needs Redis). Ctrl-C stops everything."
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
        parser.add_argument(
            "--processes",
            type=int,
            default=settings.ORRERY_WEB_PROCESSES,
            help="server processes on the port, each with its own core (needs REDIS_URL)",
        )
        # A process started by --processes serves the listening socket it was handed.
        parser.add_argument("--listen-fd", type=int, help=argparse.SUPPRESS)

    @staticmethod
    def _daphne_args(endpoint: list[str]) -> list[str]:
        args = list(endpoint)
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

    def handle(
        self,
        *args,
        host: str,
        port: int,
        no_migrate: bool,
        no_worker: bool,
        processes: int,
        listen_fd: int | None,
        **opts,
    ):
        if listen_fd is not None:
            self._serve(["--fd", str(listen_fd)])
            return
        if processes < 1:
            raise CommandError("--processes must be 1 or more.")
        if processes > 1 and not settings.REDIS_URL:
            raise CommandError(
                "Serving from several processes needs Redis (set REDIS_URL): without it the "
                "cache, the channel layer and the job queue live inside one process."
            )
        sockets = [_listening_socket(host, port) for _ in range(processes)] if processes > 1 else []
        if not no_migrate:
            call_command("migrate", interactive=False, verbosity=1)
        worker = None if no_worker else start_embedded_worker()
        self.stdout.write(
            self.style.SUCCESS(f"Orrery is serving on http://{host}:{port}/  (Ctrl-C stops it)")
        )
        try:
            if sockets:
                self._serve_several(sockets)
            else:
                self._serve(["--bind", host, "--port", str(port)])
        finally:
            if worker is not None:
                worker.stop(timeout=10_000)

    def _serve(self, endpoint: list[str]) -> None:
        # Imported here: daphne installs the Twisted reactor on import.
        from daphne.cli import CommandLineInterface

        # Load the provider catalog now rather than in the first model call.
        from apps.providers import catalog  # a feature app; core only warms it

        catalog.providers()
        self._send_small_writes_at_once()
        self._cheap_content_type()
        self._write_through()
        self._freeze_startup_objects()
        CommandLineInterface().run(self._daphne_args(endpoint))

    def _serve_several(self, sockets: list[socket.socket]) -> None:
        """One server process per socket. Each socket is bound to the same port with
        SO_REUSEPORT, so the kernel spreads new connections over the processes. This
        process runs the worker (if any) and stops the servers when it is stopped."""
        manage = str(settings.BASE_DIR / "manage.py")
        servers = []
        for sock in sockets:
            command = [sys.executable, manage, "serve", "--listen-fd", str(sock.fileno())]
            servers.append(subprocess.Popen(command, pass_fds=(sock.fileno(),)))  # noqa: S603
            sock.close()
        # SIGTERM (docker stop, a supervisor) unwinds like Ctrl-C, through the finally.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        try:
            while True:
                for server in servers:
                    if server.poll() is not None:
                        raise CommandError(
                            f"A server process exited (code {server.returncode}); "
                            "stopping the others."
                        )
                time.sleep(0.5)
        finally:
            for server in servers:
                if server.poll() is None:
                    server.terminate()
            for server in servers:
                try:
                    server.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    server.kill()


def _listening_socket(host: str, port: int) -> socket.socket:
    """A socket listening on host:port that other sockets may share (SO_REUSEPORT).
    IPv4 only: Twisted adopts a handed-down socket as IPv4 unless told otherwise, and
    daphne's --fd cannot tell it."""
    try:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        sock.listen(1024)
    except OSError as exc:
        raise CommandError(f"Cannot listen on {host}:{port}: {exc}") from exc
    sock.set_inheritable(True)
    return sock
