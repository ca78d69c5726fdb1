"""Loaded models, kept once per process and reused, with a bound on the bytes of weights held."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from ladder.models.types import Backend


class ModelCache:
    """Least-recently-used cache of loaded backends, bounded by an estimate of their weight bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, tuple[Backend, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple, load: Callable[[], tuple[Backend, int]]) -> Backend:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key][0]
            key_lock = self._loading.setdefault(key, threading.Lock())
        # One loader per key; others wait for it instead of loading the same weights twice.
        with key_lock:
            with self._lock:
                if key in self._items:
                    self._items.move_to_end(key)
                    return self._items[key][0]
            backend, size = load()
            with self._lock:
                self._items[key] = (backend, size)
                self._evict()
                self._loading.pop(key, None)
            return backend

    def _evict(self) -> None:
        while len(self._items) > 1 and sum(s for _, s in self._items.values()) > self.max_bytes:
            self._items.popitem(last=False)

    def drop(self, predicate: Callable[[tuple], bool] | None = None) -> None:
        with self._lock:
            for key in [k for k in self._items if predicate is None or predicate(k)]:
                del self._items[key]

    def keys(self) -> list[tuple]:
        with self._lock:
            return list(self._items)
