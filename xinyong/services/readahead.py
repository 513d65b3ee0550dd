"""An iterator's items made by a thread a few items ahead of the one that takes them.

For a pipeline of two stages that each spend much of their time outside the GIL (SQLite's steps,
pyarrow's kernels, reading a file): the producing stage runs on the other core while this one
consumes. A bounded queue keeps memory flat; an exception in the producer is raised again in the
consumer, where it would otherwise wait forever.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")

_END = object()


class _Raised:
    def __init__(self, exc: BaseException):
        self.exc = exc


class ReadAhead(Generic[T]):
    """`make()`'s items, produced by a thread started at once, at most `ahead` not yet taken.
    Use it as a context manager (or call `close`): leaving stops the producer, also when the
    consumer gives up early."""

    def __init__(self, make: Callable[[], Iterator[T]], ahead: int = 2, name: str = "read-ahead"):
        self._queue: queue.Queue[object] = queue.Queue(maxsize=ahead)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(make,), name=name, daemon=True)
        self._thread.start()

    def _offer(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, make: Callable[[], Iterator[T]]) -> None:
        try:
            for item in make():
                if not self._offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - raised again in the consumer's thread
            self._offer(_Raised(exc))
            return
        self._offer(_END)

    def __iter__(self) -> Iterator[T]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, _Raised):
                raise item.exc
            yield item  # type: ignore[misc]

    def close(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
