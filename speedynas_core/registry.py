"""A tiny name -> factory registry used by every pluggable part (spaces, samplers, estimators...)."""
from __future__ import annotations

import inspect
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import SpeedyNASError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to factories; ``kind`` names the registered things in error messages.

    ``fixed`` names the factory parameters the caller supplies (a sampler's supernet, a
    network's arch); every other keyword parameter is an option users set in the config (see
    :mod:`speedynas_core.plugins`).
    """

    def __init__(self, kind: str, fixed: tuple[str, ...] = ()) -> None:
        self.kind, self.fixed = kind, fixed
        self._factories: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name`` (names are unique)."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._factories:
                owner = getattr(self._factories[name], "__module__", "?")
                raise SpeedyNASError(f"{self.kind} {name!r} is already registered (by module "
                                     f"{owner}); a plugin must register another name")
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


def create_checked(registry: Registry[T], name: str, options: dict[str, Any]) -> T:
    """``registry.create(name, **options)``, first naming any unknown or missing option."""
    factory = registry.get(name)
    params = inspect.signature(factory).parameters.values()
    if not any(p.kind is p.VAR_KEYWORD for p in params):
        accepted = [p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        listing = f"options: {', '.join(accepted)}" if accepted else "it takes no options"
        for option in options:
            if option not in accepted:
                raise SpeedyNASError(f"{registry.kind} {name!r} has no option {option!r}; "
                                     f"{listing}")
        for p in params:
            if p.default is p.empty and p.kind is not p.VAR_POSITIONAL and p.name not in options:
                raise SpeedyNASError(f"{registry.kind} {name!r} needs option {p.name!r}")
    return factory(**options)
