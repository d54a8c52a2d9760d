"""One HTTP/1.1 keep-alive connection: a request goes out in one write, the answer is parsed by httptools.

A request is formatted in one piece (``http.client`` writes headers and body separately)
and the answer is parsed by httptools (llhttp, the parser of Node.js and uvicorn):
status, headers, Content-Length or chunked bodies, keep-alive, all in C.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

import httptools

ParseError = httptools.HttpParserError
TransportError = (OSError, ParseError)  # what a failed exchange raises: worth another attempt


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


@dataclass
class _Reading:
    """httptools' callbacks for one answer."""

    complete: bool = False
    keep_alive: bool = False
    content_type: str = ""
    chunks: list[bytes] = field(default_factory=list)
    parser: httptools.HttpResponseParser | None = None

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() == b"content-type":
            self.content_type = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.keep_alive = self.parser.should_keep_alive()  # only known while the headers are current

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)

    def on_message_complete(self) -> None:
        self.complete = True


class Connection:
    """A client connection for one request at a time; ``reusable`` says whether it may take another."""

    def __init__(self, scheme: str, host: str, port: int | None, timeout_s: float) -> None:
        default = 443 if scheme == "https" else 80
        raw = socket.create_connection((host, port or default), timeout=timeout_s)
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ssl.create_default_context().wrap_socket(raw, server_hostname=host) if scheme == "https" else raw
        self.host = host if port is None else f"{host}:{port}"
        self.reusable = True

    def send(self, method: str, target: str, headers: dict[str, str], body: bytes) -> None:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.host}", f"Content-Length: {len(body)}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def receive(self) -> Reply:
        reading = _Reading()
        parser = reading.parser = httptools.HttpResponseParser(reading)
        while not reading.complete:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the server closed the connection before answering")
            parser.feed_data(data)
        self.reusable = reading.keep_alive
        return Reply(parser.get_status_code(), reading.content_type, b"".join(reading.chunks))

    def close(self) -> None:
        self.sock.close()
