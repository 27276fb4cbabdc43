"""A stream's receive buffer as a queue of the chunks that were written.

A writer's chunk is queued as it came and a reader that takes a whole
chunk takes that very object, so a bulk transfer copies nothing in the
kernel; only a read that ends inside a chunk splits it.
"""
from __future__ import annotations

from collections import deque


class ByteQueue:
    __slots__ = ("chunks", "size")

    def __init__(self) -> None:
        self.chunks: deque[bytes] = deque()
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def append(self, data: bytes) -> None:
        if data:
            self.chunks.append(data)
            self.size += len(data)

    def unread(self, data: bytes) -> None:
        """Put data back at the front (a receive whose copy-out failed)."""
        if data:
            self.chunks.appendleft(data)
            self.size += len(data)

    def take(self, n: int, peek: bool = False) -> bytes:
        """Up to n bytes from the front; peek leaves them queued."""
        chunks = self.chunks
        if not chunks or n <= 0:
            return b""
        first = chunks[0]
        if len(first) >= n or len(chunks) == 1:
            out = first[:n] if len(first) > n else first
            if not peek:
                if len(first) > n:
                    chunks[0] = first[n:]
                else:
                    chunks.popleft()
                self.size -= len(out)
            return out
        parts, got = [], 0
        for c in chunks:
            if got + len(c) > n:
                parts.append(c[:n - got])
                got = n
                break
            parts.append(c)
            got += len(c)
            if got == n:
                break
        out = b"".join(parts)
        if not peek:
            self.discard(len(out))
        return out

    def discard(self, n: int) -> None:
        chunks = self.chunks
        self.size -= n
        while n:
            c = chunks[0]
            if len(c) <= n:
                chunks.popleft()
                n -= len(c)
            else:
                chunks[0] = c[n:]
                n = 0

    def clear(self) -> None:
        self.chunks.clear()
        self.size = 0
