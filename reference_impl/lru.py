"""A bounded memory shared by a server's threads: at most ``capacity`` entries, the least recently used
going first. What a server remembers between requests goes through it: verified tokens, compiled search
statements, document keys, the patients of resource versions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LruMemory(Generic[K, V]):
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()  # units of work run on several threads

    def get(self, key: K) -> V | None:
        """The value remembered for ``key`` (now the most recently used), or None."""
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> None:
        with self._lock:
            self._entries[key] = value
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)  # O(1): a dict steps over its deleted keys to its first

    def forget(self, key: K) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def remembered(self) -> list[K]:
        """The keys remembered, least recently used first."""
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        return len(self._entries)
