"""A tiny name -> factory registry used by every pluggable part (spaces, samplers, estimators...)."""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import SpeedyNASError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``kind`` names the registered things in error messages."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (names are unique)."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                raise KeyError(f"{self.kind} {name!r} is already registered")
            self._factories[name] = factory
            return factory

        return decorate

    def create(self, name: str, *args, **kwargs) -> T:
        """Build the thing registered as ``name``; unknown names list the valid ones."""
        return self.get(name)(*args, **kwargs)

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered as ``name``."""
        try:
            return self._factories[name]
        except KeyError:
            raise SpeedyNASError(
                f"unknown {self.kind} {name!r}; registered: {', '.join(self.names())}"
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
