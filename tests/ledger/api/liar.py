"""Lying servers for the client tests, on loopback ports: a proxy in front of a real `ledger serve`
that rewrites the question or doctors the answer (real, signed data, edited), and a raw socket
server that answers slowly (a byte at a time) or hugely."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

Rewrite = Callable[[str], str]
Doctor = Callable[[str, dict[str, Any]], dict[str, Any]]


@contextmanager
def liar(real: str, rewrite: Rewrite | None = None, doctor: Doctor | None = None) -> Iterator[str]:
    """A proxy to ``real``: each request path (with its query) goes through ``rewrite``, each
    JSON object answered through ``doctor(path asked, document)``; yields the proxy's URL."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            n = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(n) if n else None
            path = rewrite(self.path) if rewrite else self.path
            r = httpx.request(
                self.command,
                real + path,
                content=body,
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            data, ctype = r.content, r.headers.get("content-type", "application/json")
            if r.status_code == 200 and doctor is not None and ctype.startswith("application/json"):
                data = json.dumps(doctor(self.path, r.json())).encode()
            self.send_response(r.status_code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        srv.shutdown()
        srv.server_close()


@contextmanager
def raw_server(mode: str, size: int = 0, every: float = 0.2) -> Iterator[str]:
    """``drip``: a 200 whose body comes one byte every ``every`` seconds (never ending);
    ``huge``: a JSON body of ``size`` bytes, as fast as the socket takes it."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            try:
                if mode == "drip":
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 100000\r\n\r\n{"
                    )
                    while not stop.wait(every):
                        conn.sendall(b" ")
                else:
                    conn.sendall(
                        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: %d\r\n\r\n" % size
                    )
                    chunk = b'["' + b"a" * (size - 4) + b'"]'
                    for i in range(0, len(chunk), 1 << 16):
                        if stop.is_set():
                            return
                        conn.sendall(chunk[i : i + (1 << 16)])
                    stop.wait(30)
            except OSError:
                return  # the client hung up: what it should do

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        time.sleep(0)
