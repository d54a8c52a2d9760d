"""The gateway adapter's HTTP/1.1 connection against canned answers from a loopback socket."""

from __future__ import annotations

import socket
import threading

import pytest

from flows.payments.http1 import Connection, ParseError


def test_one_write_per_request_and_answers_with_length_or_chunks_on_one_connection() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    received: list[bytes] = []
    canned = [
        b'HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"id":"p1"}',
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
        b'5\r\n{"id"\r\n6\r\n:"p2"}\r\n0\r\n\r\n',
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ]

    def run() -> None:
        conn, _ = listener.accept()
        with conn:
            for answer in canned:
                received.append(conn.recv(65536))
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    connection = Connection("http", "127.0.0.1", port, timeout_s=2.0)
    replies = []
    for i in range(3):
        connection.send("POST", f"/v1/x{i}", {"Idempotency-Key": f"k{i}"}, b"{}")
        replies.append(connection.receive())
    thread.join(2)
    listener.close()
    assert [(r.status, r.body) for r in replies] == [(201, b'{"id":"p1"}'), (200, b'{"id":"p2"}'), (503, b"")]
    assert replies[0].content_type == "application/json"
    assert received[0] == (
        b"POST /v1/x0 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Length: 2\r\nIdempotency-Key: k0\r\n\r\n{}" % port
    ), "the request, head and body, arrived in one read"
    assert not connection.reusable, "a server that says Connection: close gets no second request"


def test_garbage_and_a_closed_connection_are_transport_errors() -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def run() -> None:
        for answer in (b"SMTP ready\r\n\r\n", b""):
            conn, _ = listener.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(answer)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    port = listener.getsockname()[1]
    garbled = Connection("http", "127.0.0.1", port, timeout_s=2.0)
    garbled.send("POST", "/", {}, b"")
    with pytest.raises(ParseError):
        garbled.receive()
    closed = Connection("http", "127.0.0.1", port, timeout_s=2.0)
    closed.send("POST", "/", {}, b"")
    with pytest.raises(ConnectionError):
        closed.receive()
    thread.join(2)
    listener.close()
