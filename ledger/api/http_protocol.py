"""uvicorn's httptools protocol, with a response's head and body sent in one ``send``.

uvicorn writes a response's status line and headers, then its body, as two transport writes; on
uvloop each is a ``send`` system call made holding the interpreter lock, and over loopback each
also costs the client a wake-up and a read. Measured under ``wrk`` on a single append, the two
writes were about a tenth of the worker's interpreter-lock time. Here the transport holds a write
until the next write (then both leave as one) or until the event loop's next turn, whichever comes
first: no byte is reordered, delayed past the current loop turn, or changed.

``ledger serve`` passes this class to uvicorn (``http=``); it needs ``httptools``, which
``uvicorn[standard]`` installs.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

__all__ = ["CoalescingTransport", "HttpProtocol"]

PROTOCOL = "ledger.api.http_protocol:HttpProtocol"  # uvicorn's ``http`` setting


class CoalescingTransport:
    """Delegates to ``transport``; a write waits for the next write or the loop's next turn."""

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._held is None:
            self._held = bytes(data)
            self._loop.call_soon(self._flush)
            return
        held, self._held = self._held, None
        self._transport.write(held + data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def _flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + len(self._held or b"")

    def __getattr__(self, name: str) -> Any:  # is_closing, get_extra_info, pause_reading, …
        return getattr(self._transport, name)


class HttpProtocol(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        coalescing: Any = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)
