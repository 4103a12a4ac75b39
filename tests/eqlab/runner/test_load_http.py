"""The load scenarios' HTTP client against a byte-level server: what it sends, how it reads every way an
answer can be delimited, and each way a system under test can break or abuse an exchange.

The server is plain sockets in threads, so every answer is exactly the bytes a test writes; the client
runs on gevent in the test's own thread, as it runs in a load process.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from eqlab.runner import load_answers
from eqlab.runner.load_answers import LoadResponse
from eqlab.runner.load_http import LabHttpClient

OK = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"b"}\r\n'


@dataclass
class Recorder:
    """locust's request event, as the client sees it."""

    fired: list[dict[str, Any]] = field(default_factory=list)

    def fire(self, **kwargs: Any) -> None:
        self.fired.append(kwargs)

    @property
    def failures(self) -> list[str]:
        return [str(f["exception"]) for f in self.fired if f["exception"] is not None]


def read_request(conn: socket.socket) -> bytes | None:
    """One request (head and Content-Length body), or None when the client closed the connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")), 0
    )
    while len(body) < length:
        body += conn.recv(65536)
    return head + b"\r\n\r\n" + body


Handler = Callable[[socket.socket, "RawServer"], None]


class RawServer:
    """A loopback TCP server: each connection is given, in a thread of its own, to the test's handler."""

    def __init__(self, handler: Handler, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.requests: list[bytes] = []
        self.clients: list[LabHttpClient] = []
        self.connections = 0
        self.closed_by_client = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://localhost:{self.listener.getsockname()[1]}/fhir/"

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            self.handler(conn, self)
        except OSError:
            pass
        finally:
            conn.close()

    def next_request(self, conn: socket.socket) -> bytes | None:
        request = read_request(conn)
        if request is None:
            self.closed_by_client.set()
        else:
            self.requests.append(request)
        return request

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.listener.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler, tls: ssl.SSLContext | None = None) -> RawServer:
        servers.append(RawServer(handler, tls))
        return servers[-1]

    yield start
    for server in servers:
        for lab in server.clients:
            lab.close()
        server.close()


def answering(*answers: bytes) -> Handler:
    """Answers the connection's requests in turn, then waits for the client to close it."""

    def handle(conn: socket.socket, server: RawServer) -> None:
        for answer in answers:
            if server.next_request(conn) is None:
                return
            conn.sendall(answer)
        server.next_request(conn)

    return handle


def client(server: RawServer, **kwargs: Any) -> tuple[LabHttpClient, Recorder]:
    recorder = Recorder()
    server.clients.append(LabHttpClient(server.base, recorder, **kwargs))
    return server.clients[-1], recorder


def test_requests_share_one_connection_and_say_what_the_scenario_asked(serve: Callable[..., RawServer]) -> None:
    server = serve(answering(OK, OK, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", OK))
    lab, recorder = client(server)
    first = lab.get("Patient/1", headers={"Authorization": "Bearer t0k"}, name="GET Patient/[id]")
    lab.get("Patient", params={"family": "Müller", "_count": 2})
    created = lab.post("Observation", json={"resourceType": "Observation"}, headers={"Content-Type": "x/y"})
    assert server.connections == 1
    assert first.status_code == 200 and first.json() == {"a": "b"} and first.text == '{"a":"b"}\r\n'
    assert first.headers["content-type"] == first.headers["Content-Type"] == "application/json"
    assert created.status_code == 201 and created.ok and created.content == b""
    lab.get("Patient?family=Müller&given=Zoé")
    read, search, post, unencoded = server.requests
    assert unencoded.startswith(b"GET /fhir/Patient?family=M%C3%BCller&given=Zo%C3%A9 HTTP/1.1\r\n")
    assert read.startswith(b"GET /fhir/Patient/1 HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer t0k\r\n" in read and b"\r\nAccept-Encoding: identity\r\n" in read
    assert f"\r\nHost: localhost:{server.listener.getsockname()[1]}\r\n".encode() in read
    assert search.startswith(b"GET /fhir/Patient?family=M%C3%BCller&_count=2 HTTP/1.1\r\n")
    assert post.startswith(b"POST /fhir/Observation HTTP/1.1\r\n")
    assert b"\r\nContent-Length: 30\r\n" in post and post.endswith(b'\r\n\r\n{"resourceType":"Observation"}')
    assert b"\r\nContent-Type: x/y\r\n" in post and b"application/json" not in post  # the scenario's own type
    names = [(f["request_type"], f["name"], f["response_length"], f["exception"]) for f in recorder.fired]
    assert names == [
        ("GET", "GET Patient/[id]", 11, None),
        ("GET", "Patient", 11, None),
        ("POST", "Observation", 0, None),
        ("GET", "Patient?family=Müller&given=Zoé", 11, None),
    ]
    assert recorder.fired[1]["url"] == f"{server.base.removesuffix('/fhir/')}/fhir/Patient?family=M%C3%BCller&_count=2"
    assert all(f["response_time"] > 0 for f in recorder.fired)


def test_a_chunked_answer_is_read_whole(serve: Callable[..., RawServer]) -> None:
    chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3\r\nefg\r\n0\r\n\r\n"
    server = serve(answering(chunked, OK))
    lab, recorder = client(server)
    assert lab.get("a").content == b"abcdefg"
    assert lab.get("b").status_code == 200 and server.connections == 1
    assert recorder.failures == []


def test_an_answer_delimited_by_the_connections_end_is_read_whole_then_a_new_connection_made(
    serve: Callable[..., RawServer],
) -> None:
    def until_close(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\n\r\nall of ")
        time.sleep(0.05)
        conn.sendall(b"it")

    server = serve(until_close)
    lab, recorder = client(server)
    assert lab.get("a").content == b"all of it"
    assert lab.get("b").content == b"all of it"
    assert server.connections == 2 and recorder.failures == []


def test_an_informational_answer_is_passed_over_for_the_answer_after_it(serve: Callable[..., RawServer]) -> None:
    server = serve(answering(b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>\r\n\r\n" + OK, OK))
    lab, recorder = client(server)
    first = lab.get("a")
    assert first.status_code == 200 and first.json() == {"a": "b"} and "link" not in first.headers
    assert lab.get("b").status_code == 200 and server.connections == 1 and recorder.failures == []


def test_an_answer_nobody_asked_for_fails_the_request_and_ends_the_connection(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(answering(OK + OK, OK))
    lab, recorder = client(server)
    assert not lab.get("a").ok
    assert recorder.failures == ["a second answer came to one request"]
    assert lab._sock is None  # the next request does not read the extra answer as its own


def test_an_answer_sent_before_its_request_is_refused(serve: Callable[..., RawServer]) -> None:
    sent_ahead = threading.Event()

    def ahead(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        conn.sendall(OK)
        time.sleep(0.1)
        conn.sendall(OK)  # the answer to a request not yet sent: it would be timed as instant
        sent_ahead.set()
        server.next_request(conn)

    server = serve(ahead)
    lab, recorder = client(server)
    assert lab.get("a").ok
    assert sent_ahead.wait(10)
    assert not lab.get("b").ok
    assert recorder.failures == ["an answer came before its request"]
    assert len(server.requests) == 1  # the second request was never sent on that connection


def test_a_connection_the_server_closed_while_idle_is_replaced_before_sending(
    serve: Callable[..., RawServer],
) -> None:
    closed = threading.Event()

    def once(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        conn.sendall(OK)
        conn.close()
        closed.set()

    server = serve(once)
    lab, recorder = client(server)
    assert lab.get("a").ok
    assert closed.wait(10)
    assert lab.post("b", json={}).ok  # not a retry: the closed connection was seen before sending
    assert server.connections == 2 and len(server.requests) == 2 and recorder.failures == []


def test_connection_close_is_honoured(serve: Callable[..., RawServer]) -> None:
    closing = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"
    server = serve(answering(closing))
    lab, recorder = client(server)
    assert lab.get("a").content == b"hi" and lab.get("b").content == b"hi"
    assert server.connections == 2 and recorder.failures == []


def test_a_kept_alive_connection_the_server_dropped_is_retried_only_for_idempotent_methods(
    serve: Callable[..., RawServer],
) -> None:
    server = serve(answering(OK))  # answers once, then drops the connection when the next request comes
    lab, recorder = client(server)
    assert lab.get("a").status_code == 200
    assert lab.get("b").status_code == 200  # sent again on a new connection
    assert server.connections == 2
    posted = lab.post("c", json={})  # the connection is dropped again: a POST is not sent twice
    assert posted.status_code == 0 and not posted.ok
    assert recorder.failures == ["the connection closed before an answer"]
    # the second GET reached the first connection as it was dropped and went again on the second; the POST once
    assert server.connections == 2 and [r.split(b" ")[0] for r in server.requests] == [b"GET", b"GET", b"GET", b"POST"]


def test_status_and_redirects_fail_the_request_and_no_redirect_is_followed(serve: Callable[..., RawServer]) -> None:
    redirect = b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:9/steal\r\nContent-Length: 0\r\n\r\n"
    not_found = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"
    odd = b"HTTP/1.1 599 Whatever\r\nContent-Length: 0\r\n\r\n"
    server = serve(answering(redirect, not_found, odd))
    lab, recorder = client(server)
    for path in ("a", "b", "c"):
        lab.get(path)
    assert recorder.failures == [
        "redirected (307) to http://127.0.0.2:9/steal: the lab follows no redirect",
        "404 Not Found",
        "599 (no standard reason)",
    ]
    assert len(server.requests) == 3 and server.connections == 1


def test_an_oversized_answer_is_cut_off(serve: Callable[..., RawServer], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load_answers, "MAX_RESPONSE_BYTES", 100_000)

    def huge(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10737418240\r\n\r\n")
        while True:
            conn.sendall(b"x" * 65536)

    server = serve(huge)
    lab, recorder = client(server)
    assert lab.get("a").content == b""
    assert recorder.failures == ["the response exceeded 100000 bytes; the lab stopped reading it"]
    assert lab._sock is None  # the half-read connection is closed, never reused


@pytest.mark.parametrize("trick", ["trickle", "silence"])
def test_an_answer_that_never_ends_is_cut_off_in_time(serve: Callable[..., RawServer], trick: str) -> None:
    def slow(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        if trick == "trickle":
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        conn.settimeout(0.1)
        while True:
            try:
                if trick == "trickle":
                    conn.sendall(b"x")
                if conn.recv(1) == b"":
                    break
            except TimeoutError:
                continue
            except OSError:
                break
        server.closed_by_client.set()

    server = serve(slow)
    lab, recorder = client(server, response_seconds=1.0)
    began = time.monotonic()
    lab.get("a")
    assert time.monotonic() - began < 2.0
    assert recorder.failures == ["the response was still arriving after 1 s; the lab stopped reading it"]
    assert server.closed_by_client.wait(2), "the lab left the connection open"


@pytest.mark.parametrize(
    ("answer", "failure"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nten bytes.", "the connection closed in the middle of"),
        (b"SSH-2.0-OpenSSH_9.2\r\n", "the answer is not HTTP/1.1: "),
        (b"", "the connection closed before an answer"),
    ],
    ids=["dropped-mid-body", "not-http", "closed-at-once"],
)
def test_a_broken_answer_fails_the_request_with_its_reason(
    serve: Callable[..., RawServer], answer: bytes, failure: str
) -> None:
    def broken(conn: socket.socket, server: RawServer) -> None:
        server.next_request(conn)
        conn.sendall(answer)

    server = serve(broken)
    lab, recorder = client(server)
    assert lab.get("a").status_code == 0
    (reported,) = recorder.failures
    assert reported.startswith(failure), reported
    assert lab._sock is None


def test_a_refused_connection_fails_the_request() -> None:
    unused = socket.create_server(("127.0.0.1", 0))
    port = unused.getsockname()[1]
    unused.close()
    recorder = Recorder()
    LabHttpClient(f"http://127.0.0.1:{port}/", recorder).get("metadata")
    assert recorder.failures == ["the connection failed: Connection refused"]


def test_an_answer_to_head_has_no_body_whatever_its_length_says(serve: Callable[..., RawServer]) -> None:
    server = serve(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n", OK))
    lab, recorder = client(server)
    headed = lab.head("a")
    assert headed.status_code == 200 and headed.content == b"" and headed.headers["content-length"] == "5000"
    assert lab.get("b").status_code == 200 and recorder.failures == [] and server.connections == 1


def test_a_scenario_addresses_only_its_target_and_writes_no_header_lines(serve: Callable[..., RawServer]) -> None:
    server = serve(answering(OK))
    lab, recorder = client(server)
    port = server.listener.getsockname()[1]
    assert lab.get(f"http://localhost:{port}/other/path").status_code == 200  # the target's own origin
    assert server.requests[0].startswith(b"GET /other/path HTTP/1.1\r\n")
    with pytest.raises(ValueError, match="addresses only its target"):
        lab.get("http://127.0.0.2:9/elsewhere")
    with pytest.raises(ValueError, match="line break"):
        lab.get("a", headers={"X-Trick": "1\r\nHost: elsewhere"})
    with pytest.raises(ValueError, match="no spaces or line breaks"):
        lab.get("a HTTP/1.1\r\nHost: elsewhere\r\n\r\nGET /b")
    with pytest.raises(ValueError, match="catch_response"):
        lab.get("a", catch_response=True)
    with pytest.raises(ValueError, match="http"):
        LabHttpClient("ftp://localhost/", recorder)
    assert len(server.requests) == 1 and len(recorder.fired) == 1


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


def test_https_is_verified_as_the_contract_checks_verify_it(
    serve: Callable[..., RawServer], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_file, key_file = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server = serve(answering(OK, OK), tls)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    untrusting, recorder = client(server)
    untrusting.get("a", headers={"Authorization": "Bearer secret"})
    (failure,) = recorder.failures
    assert failure.startswith("TLS failed: CERTIFICATE_VERIFY_FAILED"), failure
    assert server.requests == []  # the token never left the lab
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_file))
    trusting, recorder = client(server)
    response: LoadResponse = trusting.get("a")
    assert response.status_code == 200 and trusting.get("b").status_code == 200 and recorder.failures == []
    assert len(server.requests) == 2
