"""A small decorator registry (in the spirit of timm's `_registry.py`).

Datasets, architectures, pruning methods and corruptions each have one registry; a
parametrized test holds every registered entry to the same contract.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from pipeline.errors import PruneScopeError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name → entry mapping with a decorator to add entries and clear lookup errors."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers `obj` under `name` (names are unique)."""

        def deco(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            return obj

        return deco

    def get(self, name: str) -> T:
        """The entry called `name`; an unknown name is an error listing the known ones."""
        try:
            return self._entries[name]
        except KeyError:
            raise PruneScopeError(
                f"unknown {self.kind} {name!r}",
                f"use one of: {', '.join(sorted(self._entries))}",
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
