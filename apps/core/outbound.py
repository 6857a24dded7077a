"""The one HTTP client for calls made on a user's behalf, guarded against SSRF.

Every new connection resolves its host, refuses the whole answer if any address is not
public (unless the operator allows it), and connects to the address it checked, so a DNS
answer that changes between the check and the connect (rebinding) cannot slip through.
Redirects are new requests through the same transport, so every hop is checked too. TLS
still verifies the certificate against the host name, because only the socket is pinned.

The sync client runs on httpx's own transport; the async one on aiohttp's (through
httpx-aiohttp), whose resolver hook takes the same check.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import aiohttp
import aiohttp.abc
import httpcore
import httpx
from django.conf import settings
from httpx_aiohttp import AiohttpTransport

from apps.core.errors import DomainError

DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
MAX_REDIRECTS = 5
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)  # httpx's own

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Instance metadata services hand out cloud credentials: AWS (IMDS, ECS, EKS pod
# identity), GCP and Azure (169.254.169.254), Azure WireServer, Alibaba Cloud.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "168.63.129.16",
        "100.100.100.200",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# Options the guard owns: a caller's transport, proxy or mounts would bypass it.
_REFUSED_OPTIONS = frozenset({"transport", "mounts", "proxy", "trust_env", "app", "cert"})
_TRANSPORT_OPTIONS = ("verify", "http1", "http2", "limits")


class OutboundBlocked(DomainError):
    code = "outbound_blocked"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, host: str = "", address: str = ""):
        super().__init__(message, code=code)
        self.host = host
        self.address = address


class OutboundTooLarge(DomainError):
    code = "outbound_too_large"
    status = 400


def guarded_client(**kwargs: Any) -> httpx.Client:
    """An httpx.Client whose every connection is checked; reuse it to pool connections."""
    transport = _GuardedTransport(**_pop_transport_options(kwargs))
    return httpx.Client(transport=transport, trust_env=False, **_client_options(kwargs))


def guarded_async_client(**kwargs: Any) -> httpx.AsyncClient:
    """The async twin of guarded_client."""
    transport = _GuardedAsyncTransport(**_pop_transport_options(kwargs))
    return _AcyclicAsyncClient(transport=transport, trust_env=False, **_client_options(kwargs))


class _AcyclicAsyncClient(httpx.AsyncClient):
    """httpx's AsyncClient without a reference cycle per response.

    httpx wraps each response's body in a stream that points back at the response, so
    every response, with its request, headers and connection objects (some 40 of them),
    is freed only by the cyclic garbage collector. A server relaying thousands of
    streams then has collections of tens of thousands of objects that stop every stream
    for 50 ms or more. Here the response lets go of that stream once it is closed, and
    plain reference counting frees the lot."""

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        response = await super().send(request, **kwargs)
        if response.is_closed:  # read whole already (not streamed)
            response.stream = httpx.ByteStream(b"")
        else:
            response.stream = _LetGoOnClose(response.stream)
        return response


class _LetGoOnClose(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream: httpx.AsyncByteStream | None = stream

    def __aiter__(self):
        if self._stream is None:
            raise httpx.StreamClosed()
        return self._stream.__aiter__()  # no layer of our own on each chunk

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.aclose()


def check_url(url: str) -> None:
    """Raise OutboundBlocked now if url could not be fetched (for form validation).

    Advisory only: DNS may answer differently later; the client checks again on connect.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise OutboundBlocked(f"{url} is not a valid URL: {exc}", code="invalid_url") from exc
    _check_request_url(parsed)
    try:
        _resolve_checked(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))
    except httpcore.ConnectError as exc:
        raise OutboundBlocked(str(exc), code="unresolvable_host", host=parsed.host) from exc


def read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """Read a streamed response body, raising OutboundTooLarge once it passes max_bytes."""
    if _declared_too_large(response, max_bytes):
        response.close()
        raise _too_large(response, max_bytes)
    body = bytearray()
    # iter_bytes decodes gzip and friends, so the cap also stops decompression bombs.
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) > max_bytes:
            response.close()
            raise _too_large(response, max_bytes)
    return bytes(body)


async def aread_capped(response: httpx.Response, max_bytes: int) -> bytes:
    """The async twin of read_capped."""
    if _declared_too_large(response, max_bytes):
        await response.aclose()
        raise _too_large(response, max_bytes)
    body = bytearray()
    async for chunk in response.aiter_bytes():
        body += chunk
        if len(body) > max_bytes:
            await response.aclose()
            raise _too_large(response, max_bytes)
    return bytes(body)


# --- Policy ------------------------------------------------------------------


def _resolve_checked(host: str, port: int) -> list[str]:
    """Resolve host and return its addresses, or raise OutboundBlocked if any is refused."""
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise httpcore.ConnectError(f"Cannot resolve {host!r}: {exc}") from exc
    addresses = list(dict.fromkeys(str(answer[4][0]).split("%")[0] for answer in answers))
    host_allowed = host.lower().rstrip(".") in _allowed_names()
    for address in addresses:
        reason = _refusal(ipaddress.ip_address(address), host_allowed=host_allowed)
        if reason:
            raise OutboundBlocked(
                f'Refused to connect to {address} ({reason} of "{host}"): {_remedy(reason)}',
                host=host,
                address=address,
            )
    return addresses


def _refusal(address: IPAddress, *, host_allowed: bool) -> str | None:
    """Why address is refused, or None. An allow-listed address admits even metadata."""
    candidates = [address, *_embedded_ipv4(address)]
    networks = _allowed_networks()
    if any(candidate in network for candidate in candidates for network in networks):
        return None
    if any(candidate in METADATA_ADDRESSES for candidate in candidates):
        return "cloud metadata address"
    if host_allowed or settings.ORRERY_ALLOW_PRIVATE_NETWORKS:
        return None
    for candidate in candidates:
        if not candidate.is_global or candidate.is_multicast or candidate.is_reserved:
            return f"{_kind(candidate)} address"
    return None


def _embedded_ipv4(address: IPAddress) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address leads to (mapped, 6to4, Teredo, NAT64)."""
    if isinstance(address, ipaddress.IPv4Address):
        return []
    found = [address.ipv4_mapped, address.sixtofour, address.teredo and address.teredo[1]]
    if address in _NAT64:
        found.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return [candidate for candidate in found if candidate]


def _kind(address: IPAddress) -> str:
    checks = [
        (address.is_loopback, "loopback"),
        (address.is_unspecified, "unspecified"),
        (address.is_link_local, "link-local"),
        (address.is_multicast, "multicast"),
        (address in _CGNAT, "carrier-grade NAT"),
        (address.is_private, "private"),
    ]
    return next((kind for matched, kind in checks if matched), "reserved")


def _remedy(reason: str) -> str:
    if reason == "cloud metadata address":
        return "add the address to ORRERY_OUTBOUND_ALLOWLIST if this is really intended"
    return "set ORRERY_ALLOW_PRIVATE_NETWORKS=true or add it to ORRERY_OUTBOUND_ALLOWLIST"


def _allowed_names() -> set[str]:
    return {entry.strip().lower().rstrip(".") for entry in settings.ORRERY_OUTBOUND_ALLOWLIST}


def _allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    networks = []
    for entry in settings.ORRERY_OUTBOUND_ALLOWLIST:
        try:
            networks.append(ipaddress.ip_network(entry.strip().strip("[]"), strict=False))
        except ValueError:
            continue  # a host name, matched by _allowed_names
    return networks


def _check_request_url(url: httpx.URL) -> None:
    if url.scheme not in ("http", "https"):
        raise OutboundBlocked(
            f"Refused to fetch {url.scheme}:// URLs: only http and https are allowed",
            host=url.host,
        )
    if url.userinfo:
        raise OutboundBlocked(
            f'Refused a URL with credentials in it (host "{url.host}"): '
            "pass them as a header instead",
            host=url.host,
        )


# --- Transports ----------------------------------------------------------------


class _GuardedSyncBackend(httpcore.SyncBackend):
    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        error: Exception | None = None
        for address in _resolve_checked(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        raise error or httpcore.ConnectError(f"No address for {host!r}")

    def connect_unix_socket(self, path: str, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        raise OutboundBlocked("Refused to connect to a Unix socket")


def _pool_options(options: dict[str, Any]) -> dict[str, Any]:
    limits: httpx.Limits = options.get("limits", DEFAULT_LIMITS)
    return {
        "ssl_context": httpx.create_ssl_context(verify=options.get("verify", True)),
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
        "http1": options.get("http1", True),
        "http2": options.get("http2", False),
    }


class _GuardedTransport(httpx.HTTPTransport):
    def __init__(self, **options: Any):
        pool_options = _pool_options(options)
        super().__init__(verify=pool_options["ssl_context"], trust_env=False)
        # httpx takes no network backend, so its httpcore pool is replaced by one whose
        # connections go through the guard; request mapping stays httpx's own.
        self._pool = httpcore.ConnectionPool(**pool_options, network_backend=_GuardedSyncBackend())

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _check_request_url(request.url)
        return super().handle_request(request)


class _GuardedResolver(aiohttp.abc.AbstractResolver):
    """Host names for aiohttp's connector, resolved and checked like the sync backend's;
    the connector then connects to exactly these addresses."""

    async def resolve(self, host: str, port: int = 0, family=socket.AF_INET) -> list[dict]:
        try:
            # The resolver blocks; a worker thread keeps the event loop free.
            addresses = await asyncio.to_thread(_resolve_checked, host, port)
        except httpcore.ConnectError as exc:
            raise OSError(str(exc)) from exc  # aiohttp reports it as a DNS failure
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
            for address in addresses
        ]

    async def close(self) -> None:
        pass


class _GuardedAsyncTransport(AiohttpTransport):
    """httpx's async API over aiohttp's connection pool and C HTTP parser: a streamed
    body is read in whatever pieces have arrived rather than one event per HTTP chunk,
    which halves the CPU a token costs when many model streams are relayed at once."""

    def __init__(self, **options: Any):
        limits: httpx.Limits = options.get("limits", DEFAULT_LIMITS)
        ssl_context = httpx.create_ssl_context(verify=options.get("verify", True))
        super().__init__(verify=ssl_context, trust_env=False, limits=limits)

        def session() -> aiohttp.ClientSession:
            connector = aiohttp.TCPConnector(
                resolver=_GuardedResolver(),
                ssl=ssl_context,
                limit=limits.max_connections or 0,
                keepalive_timeout=limits.keepalive_expiry,
            )
            return aiohttp.ClientSession(connector=connector, trust_env=False)

        self.client = session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _check_request_url(request.url)
        if _is_ip_literal(request.url.host):  # aiohttp connects to these unresolved
            port = request.url.port or (443 if request.url.scheme == "https" else 80)
            _resolve_checked(request.url.host, port)
        try:
            return await super().handle_async_request(request)
        except ValueError as exc:  # aiohttp refuses a header with CR, LF or NUL in it
            raise httpx.LocalProtocolError(str(exc), request=request) from exc
        except httpx.ConnectTimeout as exc:
            # httpx-aiohttp names every failed connection a timeout (a refused one too).
            if isinstance(exc.__cause__, TimeoutError):
                raise
            raise httpx.ConnectError(str(exc), request=request) from exc.__cause__


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _pop_transport_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    refused = sorted(_REFUSED_OPTIONS & kwargs.keys())
    if refused:
        raise TypeError(f"Guarded clients choose their own transport; drop {', '.join(refused)}")
    return {name: kwargs.pop(name) for name in _TRANSPORT_OPTIONS if name in kwargs}


def _client_options(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {"timeout": DEFAULT_TIMEOUT, "max_redirects": MAX_REDIRECTS, **kwargs}


def _declared_too_large(response: httpx.Response, max_bytes: int) -> bool:
    """Refuse early on Content-Length; compressed bodies are judged by their decoded size."""
    declared = response.headers.get("content-length", "")
    identity = response.headers.get("content-encoding", "identity") == "identity"
    return identity and declared.isdigit() and int(declared) > max_bytes


def _too_large(response: httpx.Response, max_bytes: int) -> OutboundTooLarge:
    return OutboundTooLarge(
        f"The response from {response.request.url.host} is larger than {max_bytes} bytes"
    )
