"""The SSRF guard. Nothing here leaves the machine: refused addresses are refused before
any connection, "public" names come from a fake resolver, and connects to them are
intercepted."""

import asyncio
import datetime
import gc
import gzip
import http.server
import socket
import ssl
import threading
from dataclasses import dataclass, field

import aiohappyeyeballs
import httpcore
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.core.outbound import (
    DEFAULT_TIMEOUT,
    OutboundBlocked,
    OutboundTooLarge,
    aread_capped,
    check_url,
    guarded_async_client,
    guarded_client,
    read_capped,
)

PUBLIC_IP = "93.184.215.14"  # only ever handed out by the fake resolver; never connected to
BIG = 100_000


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse can be observed

    def do_GET(self):  # noqa: N802 - the http.server naming
        self.server.seen.append((self.path, self.headers["Host"], self.client_address[1]))
        if self.path.startswith("/redirect?to="):
            self._reply(302, b"", [("Location", self.path.removeprefix("/redirect?to="))])
        elif self.path == "/loop":
            self._reply(302, b"", [("Location", "/loop")])
        elif self.path == "/big":
            self._reply(200, b"x" * BIG)
        elif self.path == "/big-unannounced":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b"x" * BIG)
            self.close_connection = True
        elif self.path == "/bomb":
            self._reply(200, gzip.compress(b"\0" * BIG * 10), [("Content-Encoding", "gzip")])
        else:
            self._reply(200, b"hello")

    def _reply(self, status: int, body: bytes, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # refused TLS handshakes are expected in some tests


@dataclass
class LocalServer:
    port: int
    seen: list = field(default_factory=list)

    def url(self, path: str = "/ok", host: str = "127.0.0.1", scheme: str = "http") -> str:
        return f"{scheme}://{host}:{self.port}{path}"

    @property
    def paths(self) -> list[str]:
        return [path for path, _, _ in self.seen]


def _start(server: _Server):
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    result = LocalServer(port=server.server_address[1], seen=server.seen)
    return result, lambda: (server.shutdown(), server.server_close())


@pytest.fixture
def local_server():
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    running, stop = _start(server)
    yield running
    stop()


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names only `pinned.test`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pinned.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("pinned.test")]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = _Server(("127.0.0.1", 0), _Handler)
    server.seen = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    running, stop = _start(server)
    running.client_context = ssl.create_default_context(cafile=str(cert_path))
    yield running
    stop()


class FakeDns:
    """Answers for made-up names: name -> addresses, or a list of such answers handed out
    one per lookup (for rebinding). Other names go to the real resolver."""

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list] = {}
        self.lookups: list[str] = []

    def __setitem__(self, name: str, answer: list) -> None:
        self.answers[name] = answer

    def getaddrinfo(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(name)
        answer = self.answers[name]
        addresses = answer.pop(0) if isinstance(answer[0], list) else answer
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]


@pytest.fixture
def fake_dns(monkeypatch) -> FakeDns:
    dns = FakeDns(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", dns.getaddrinfo)
    return dns


@pytest.fixture
def private_refused(settings):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = False
    settings.ORRERY_OUTBOUND_ALLOWLIST = []


@pytest.fixture
def private_allowed(settings):
    settings.ORRERY_ALLOW_PRIVATE_NETWORKS = True
    settings.ORRERY_OUTBOUND_ALLOWLIST = []


def _get(url: str, **options) -> httpx.Response:
    with guarded_client(timeout=2, **options) as client:
        return client.get(url)


# --- Refused with private networks refused ---------------------------------------


@pytest.mark.parametrize(
    ("host", "address"),
    [
        pytest.param("127.0.0.1", "127.0.0.1", id="loopback"),
        pytest.param("localhost", "127.0.0.1", id="localhost"),
        pytest.param("[::1]", "::1", id="ipv6-loopback"),
        pytest.param("[::ffff:127.0.0.1]", "::ffff:127.0.0.1", id="ipv4-mapped-loopback"),
        pytest.param("0.0.0.0", "0.0.0.0", id="unspecified"),  # noqa: S104
        pytest.param("[::]", "::", id="ipv6-unspecified"),
        pytest.param("169.254.169.254", "169.254.169.254", id="metadata"),
        pytest.param("[fd00:ec2::254]", "fd00:ec2::254", id="ipv6-metadata"),
        pytest.param("10.0.0.5", "10.0.0.5", id="rfc1918-10"),
        pytest.param("192.168.1.1", "192.168.1.1", id="rfc1918-192"),
        pytest.param("172.16.0.1", "172.16.0.1", id="rfc1918-172"),
        pytest.param("100.64.0.1", "100.64.0.1", id="carrier-grade-nat"),
        pytest.param("224.0.0.1", "224.0.0.1", id="multicast"),
        pytest.param("2130706433", "127.0.0.1", id="decimal-ipv4"),
        pytest.param("0x7f.1", "127.0.0.1", id="hex-short-ipv4"),
        pytest.param("127.1", "127.0.0.1", id="short-ipv4"),
        pytest.param("[2002:7f00:1::]", "2002:7f00:1::", id="6to4-of-loopback"),
        pytest.param("[64:ff9b::7f00:1]", "64:ff9b::7f00:1", id="nat64-of-loopback"),
    ],
)
def test_non_public_addresses_are_refused(private_refused, local_server, host, address):
    with pytest.raises(OutboundBlocked) as caught:
        _get(local_server.url(host=host))
    assert caught.value.code == "outbound_blocked"
    assert caught.value.status == 400
    assert f"Refused to connect to {address} (" in caught.value.message
    assert "ORRERY_OUTBOUND_ALLOWLIST" in caught.value.message
    assert local_server.seen == []


def test_the_message_names_host_address_reason_and_setting(private_refused, fake_dns):
    fake_dns["internal.example"] = ["10.0.0.5"]
    with pytest.raises(OutboundBlocked) as caught:
        _get("http://internal.example/")
    assert caught.value.message == (
        'Refused to connect to 10.0.0.5 (private address of "internal.example"): '
        "set ORRERY_ALLOW_PRIVATE_NETWORKS=true or add it to ORRERY_OUTBOUND_ALLOWLIST"
    )


def test_a_name_resolving_to_loopback_is_refused(private_refused, fake_dns, local_server):
    fake_dns["localhost."] = ["127.0.0.1"]
    with pytest.raises(OutboundBlocked, match='loopback address of "localhost."'):
        _get(local_server.url(host="localhost."))
    assert local_server.seen == []


def test_one_private_address_among_public_ones_is_enough_to_refuse(private_refused, fake_dns):
    fake_dns["mixed.test"] = [PUBLIC_IP, "10.1.2.3"]
    with pytest.raises(OutboundBlocked, match="10.1.2.3"):
        _get("http://mixed.test/")


def test_octal_ipv4_never_reaches_a_socket(private_refused, local_server):
    # httpx refuses leading-zero IPv4 outright; the resolver would have read it as 127.0.0.1.
    with pytest.raises(httpx.InvalidURL):
        _get(local_server.url(host="0177.0.0.1"))
    with pytest.raises(OutboundBlocked) as caught:
        check_url(local_server.url(host="0177.0.0.1"))
    assert caught.value.code == "invalid_url"
    assert local_server.seen == []


def test_a_redirect_to_loopback_is_refused(settings, private_refused, fake_dns, local_server):
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["allowed.test"]
    fake_dns["allowed.test"] = ["127.0.0.1"]
    assert _get(local_server.url(host="allowed.test")).text == "hello"

    for target in (local_server.url(), local_server.url(host="localhost")):
        redirect = local_server.url(f"/redirect?to={target}", host="allowed.test")
        with pytest.raises(OutboundBlocked, match="ORRERY_ALLOW_PRIVATE_NETWORKS"):
            _get(redirect, follow_redirects=True)
    assert [path for path in local_server.paths if not path.startswith("/redirect")] == ["/ok"]


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("file:///etc/passwd", id="file"),
        pytest.param("ftp://ftp.example.com/x", id="ftp"),
        pytest.param("gopher://127.0.0.1:6379/_INFO", id="gopher"),
    ],
)
def test_other_schemes_are_refused(private_allowed, url):
    with pytest.raises(OutboundBlocked, match="only http and https"):
        _get(url)


def test_credentials_in_the_url_are_refused(private_allowed, local_server):
    with pytest.raises(OutboundBlocked, match="credentials"):
        _get(local_server.url(host="user:secret@127.0.0.1"))
    assert local_server.seen == []


# --- Allowed -----------------------------------------------------------------------


def test_private_networks_allowed_reaches_a_local_server(private_allowed, local_server):
    response = _get(local_server.url())
    assert (response.status_code, response.text) == (200, "hello")


def test_the_connection_goes_to_the_checked_address_with_the_original_host(
    private_allowed, fake_dns, local_server
):
    fake_dns["pinned.test"] = ["127.0.0.1"]
    assert _get(local_server.url(host="pinned.test")).text == "hello"
    assert local_server.seen[0][1] == f"pinned.test:{local_server.port}"
    assert fake_dns.lookups == ["pinned.test"]


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("169.254.169.254", id="aws-gcp-azure"),
        pytest.param("[fd00:ec2::254]", id="aws-ipv6"),
        pytest.param("[::ffff:169.254.169.254]", id="ipv4-mapped"),
        pytest.param("100.100.100.200", id="alibaba"),
        pytest.param("metadata.google.internal", id="by-name"),
    ],
)
def test_metadata_is_refused_even_with_private_networks_allowed(private_allowed, fake_dns, host):
    fake_dns["metadata.google.internal"] = ["169.254.169.254"]
    with pytest.raises(OutboundBlocked) as caught:
        _get(f"http://{host}/latest/meta-data/")
    assert "cloud metadata address" in caught.value.message
    assert "ORRERY_OUTBOUND_ALLOWLIST" in caught.value.message


def test_an_allow_listed_metadata_address_is_admitted(settings, private_allowed):
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["169.254.169.254"]
    check_url("http://169.254.169.254/latest/meta-data/")  # no connection: just the verdict


def test_allow_listed_host_names_do_not_admit_metadata(settings, private_refused, fake_dns):
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["models.internal"]
    fake_dns["models.internal"] = ["169.254.169.254"]
    with pytest.raises(OutboundBlocked, match="cloud metadata"):
        check_url("http://models.internal/")


def test_the_allowlist_admits_a_cidr_and_nothing_else(settings, private_refused, local_server):
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["127.0.0.0/8"]
    assert _get(local_server.url()).text == "hello"
    with pytest.raises(OutboundBlocked, match="10.0.0.5"):
        _get("http://10.0.0.5/")


def test_the_allowlist_admits_a_host_name(settings, private_refused, fake_dns, local_server):
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["Ollama.Internal"]
    fake_dns["ollama.internal"] = ["127.0.0.1"]
    fake_dns["other.internal"] = ["127.0.0.1"]
    assert _get(local_server.url(host="ollama.internal")).text == "hello"
    with pytest.raises(OutboundBlocked, match='"other.internal"'):
        _get(local_server.url(host="other.internal"))


# --- DNS rebinding -----------------------------------------------------------------


@pytest.fixture
def recorded_connects(monkeypatch):
    """Intercepts the socket connect under the guard: records the address, connects nowhere."""
    connects: list[str] = []

    def connect_tcp(self, host, port, *args, **kwargs):
        connects.append(host)
        raise httpcore.ConnectError("intercepted by the test")

    async def start_connection(addr_infos, *args, **kwargs):  # aiohttp's (async client)
        connects.extend(info[4][0] for info in addr_infos)
        raise OSError("intercepted by the test")

    monkeypatch.setattr(httpcore.SyncBackend, "connect_tcp", connect_tcp)
    monkeypatch.setattr(aiohappyeyeballs, "start_connection", start_connection)
    return connects


def test_rebinding_cannot_swap_the_checked_address(
    private_refused, fake_dns, recorded_connects, local_server
):
    fake_dns["rebind.test"] = [[PUBLIC_IP], ["127.0.0.1"], ["127.0.0.1"]]
    with pytest.raises(httpx.ConnectError):
        _get(local_server.url(host="rebind.test"))
    assert recorded_connects == [PUBLIC_IP]
    assert fake_dns.lookups == ["rebind.test"]
    assert local_server.seen == []


def test_rebinding_cannot_swap_the_checked_address_async(
    private_refused, fake_dns, recorded_connects
):
    fake_dns["rebind.test"] = [[PUBLIC_IP], ["127.0.0.1"]]

    async def fetch():
        async with guarded_async_client(timeout=2) as client:
            await client.get("http://rebind.test/")

    with pytest.raises(httpx.ConnectError):
        asyncio.run(fetch())
    assert recorded_connects == [PUBLIC_IP]


# --- TLS with a pinned address -------------------------------------------------------


def test_https_to_a_pinned_address_verifies_the_host_name(private_allowed, fake_dns, tls_server):
    fake_dns["pinned.test"] = ["127.0.0.1"]
    fake_dns["impostor.test"] = ["127.0.0.1"]
    verify = tls_server.client_context

    ok = _get(tls_server.url(host="pinned.test", scheme="https"), verify=verify)
    assert ok.text == "hello"
    for host in ("impostor.test", "127.0.0.1"):  # same socket, wrong name for the certificate
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            _get(tls_server.url(host=host, scheme="https"), verify=verify)


# --- Client behaviour ----------------------------------------------------------------


def test_one_client_reuses_its_connection(private_allowed, local_server):
    with guarded_client() as client:
        for _ in range(3):
            assert client.get(local_server.url()).text == "hello"
    assert len({port for _, _, port in local_server.seen}) == 1


def test_the_async_client_is_guarded_and_works(private_refused, settings, local_server):
    async def fetch(url: str) -> str:
        async with guarded_async_client() as client:
            return (await client.get(url)).text

    with pytest.raises(OutboundBlocked):
        asyncio.run(fetch(local_server.url()))
    settings.ORRERY_OUTBOUND_ALLOWLIST = ["127.0.0.1"]
    assert asyncio.run(fetch(local_server.url())) == "hello"


def test_redirects_are_capped(private_allowed, local_server):
    with pytest.raises(httpx.TooManyRedirects):
        _get(local_server.url("/loop"), follow_redirects=True)
    assert len(local_server.seen) == 6  # the request and five redirects


def test_defaults_and_caller_timeouts():
    with guarded_client() as client:
        assert client.timeout == DEFAULT_TIMEOUT
        assert (client.timeout.connect, client.timeout.read) == (10.0, 60.0)
        assert client.max_redirects == 5
    with guarded_client(timeout=httpx.Timeout(3.0)) as client:
        assert client.timeout.read == 3.0


@pytest.mark.parametrize("option", ["transport", "proxy", "mounts", "trust_env"])
def test_callers_cannot_replace_the_guarded_transport(option):
    with pytest.raises(TypeError, match=option):
        guarded_client(**{option: None})


def test_proxy_variables_in_the_environment_are_ignored(private_allowed, monkeypatch, local_server):
    monkeypatch.setenv("HTTP_PROXY", "http://10.9.9.9:3128")
    monkeypatch.setenv("ALL_PROXY", "http://10.9.9.9:3128")
    assert _get(local_server.url()).text == "hello"


# --- Size cap --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/big", "/big-unannounced", "/bomb"])
def test_read_capped_stops_past_the_cap(private_allowed, local_server, path):
    with guarded_client() as client, client.stream("GET", local_server.url(path)) as response:
        with pytest.raises(OutboundTooLarge, match="larger than 1000 bytes"):
            read_capped(response, 1000)


def test_read_capped_returns_a_body_within_the_cap(private_allowed, local_server):
    with guarded_client() as client, client.stream("GET", local_server.url("/big")) as response:
        assert read_capped(response, BIG) == b"x" * BIG


def test_aread_capped_stops_past_the_cap(private_allowed, local_server):
    async def fetch(path: str, cap: int) -> bytes:
        async with guarded_async_client() as client:
            async with client.stream("GET", local_server.url(path)) as response:
                return await aread_capped(response, cap)

    assert asyncio.run(fetch("/big-unannounced", BIG)) == b"x" * BIG
    with pytest.raises(OutboundTooLarge):
        asyncio.run(fetch("/big-unannounced", 1000))


def test_responses_are_freed_without_the_cycle_collector(private_allowed, local_server):
    """A streaming server relays thousands of responses; any that only the cyclic
    collector can free make its collections long pauses for every stream."""

    async def fetch_many() -> list[str]:
        bodies = []
        async with guarded_async_client() as client:
            for _ in range(5):
                bodies.append((await client.get(local_server.url())).text)
                async with client.stream("GET", local_server.url("/big")) as response:
                    bodies.append((await response.aread())[:5].decode())
        return bodies

    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)  # what the collector finds is kept here, to be counted
    try:
        bodies = asyncio.run(fetch_many())
        gc.collect()
        left = [o for o in gc.garbage if type(o).__module__.split(".")[0] in ("httpx", "aiohttp")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert bodies == ["hello", "xxxxx"] * 5
    assert left == []
