"""The one fake HTTP server of the tests: a real server on 127.0.0.1 (OS-assigned port) that
answers from a script and records every request.

Tests stand it in for the Gamma API, an OpenAI-compatible LLM endpoint, the alert webhook and the
chat and paging services Apprise sends alerts to, so httpx and requests clients, timeouts and
retries run against real sockets without any outside traffic. Given an `ssl.SSLContext` it serves
https (tests make a throwaway certificate authority with trustme).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes | str | dict | list = b""
    delay: float = 0.0
    headers: dict = field(default_factory=lambda: {"Content-Type": "application/json"})

    def payload(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


@dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes
    query_lists: dict = field(default_factory=dict)  # every value of a repeated parameter

    def json(self):
        return json.loads(self.body)


class FakeServer:
    """`handler(request) -> Reply` answers every request; `requests` records them in order."""

    def __init__(self, handler: Callable[[Request], Reply], tls: ssl.SSLContext | None = None):
        self.handler = handler
        self.requests: list[Request] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                request = Request(
                    method=self.command,
                    path=parts.path,
                    query={k: v[-1] for k, v in parse_qs(parts.query).items()},
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                    query_lists=parse_qs(parts.query),
                )
                server.requests.append(request)
                reply = server.handler(request)
                if reply.delay:
                    time.sleep(reply.delay)
                payload = reply.payload()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            do_GET = do_POST = _serve

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def chat_reply(content: str, *, finish_reason="stop", usage=None) -> Reply:
    """An OpenAI-style chat-completions answer carrying `content`."""
    return Reply(
        body={
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": finish_reason,
                }
            ],
            "usage": usage
            if usage is not None
            else {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150},
        }
    )
