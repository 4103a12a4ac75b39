"""The bounded memory a server keeps between requests: the least recently used goes first."""

from __future__ import annotations

from reference_impl.lru import LruMemory


def test_the_least_recently_used_goes_first_and_a_forgotten_key_is_gone() -> None:
    memory: LruMemory[str, int] = LruMemory(2)
    memory.put("a", 1)
    memory.put("b", 2)
    assert memory.get("a") == 1  # a is now the most recently used
    memory.put("c", 3)
    assert memory.remembered() == ["a", "c"] and memory.get("b") is None
    memory.put("a", 4)  # a new value for a kept key keeps the bound
    assert len(memory) == 2 and memory.get("a") == 4
    memory.forget("a")
    memory.forget("absent")
    assert memory.remembered() == ["c"]
