"""Plugin options: a registered factory's keyword parameters are its config keys.

A plugin declares its options once, in its factory's signature; ranges and help text ride along
in ``Annotated`` hints::

    @register_sampler("mine")
    class Mine(PathSampler):
        def __init__(self, net, per_cell: bool = False,
                     num_paths: Annotated[int, Option(min=1, help="paths per step")] = 4): ...

:func:`options_schema` turns those parameters (all but the registry's ``fixed`` ones, which the
caller supplies) into a frozen config dataclass, so the typed config checks every option
against the factory itself. :class:`PluginSection` is a config section naming one plugin whose
options are the section's other keys: ``sampler: {name: multipaths, num_paths: 4}``; a key that
the chosen plugin does not take is refused, naming it.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, get_args, get_origin

from .config import setting
from .errors import SpeedyNASError
from .registry import Registry

__all__ = ["Option", "PluginSection", "options_schema", "plugin_options"]


@dataclasses.dataclass(frozen=True)
class Option:
    """Config metadata of one plugin option, given as ``Annotated[type, Option(...)]``.

    ``type`` replaces the parameter's own hint in the config (for a factory that also accepts
    richer values, e.g. estimator objects where the config gives names).
    """

    min: float | None = None
    max: float | None = None
    gt: float | None = None
    lt: float | None = None
    help: str = ""
    type: Any = None


def _hint_source(factory: Any) -> Any:
    """The callable whose annotations describe ``factory``'s parameters."""
    if getattr(factory, "function", None) is not None:  # a function registered as a class
        return factory.function
    return factory.__init__ if isinstance(factory, type) else factory


def _config_field(name: str, hint: Any, default: Any) -> tuple[str, Any, Any]:
    meta = Option()
    if get_origin(hint) is Annotated:
        hint, *extras = get_args(hint)
        meta = next((e for e in extras if isinstance(e, Option)), meta)
    tp = meta.type if meta.type is not None else hint
    if get_origin(tp) is list and isinstance(default, tuple):
        default = list(default)
    bounds = {k: getattr(meta, k) for k in ("min", "max", "gt", "lt")}
    if default is inspect.Parameter.empty:
        return name, tp, dataclasses.field(metadata={"help": meta.help, **{
            k: v for k, v in bounds.items() if v is not None}})
    return name, tp, setting(default, help=meta.help, **bounds)


@functools.lru_cache(maxsize=None)
def _schema(registry: Registry, name: str, factory: Any) -> type:
    hints = typing.get_type_hints(_hint_source(factory), include_extras=True)
    fields = []
    for p in inspect.signature(factory).parameters.values():
        if p.name in registry.fixed or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.name not in hints:
            raise TypeError(f"{registry.kind} {name!r}: option {p.name!r} has no type hint")
        fields.append(_config_field(p.name, hints[p.name], p.default))
    label = "".join(part.title() for part in registry.kind.replace("-", " ").split())
    cls_name = f"{label}Options_{name}"
    return dataclasses.make_dataclass(cls_name, fields, frozen=True, kw_only=True)


def options_schema(registry: Registry, name: str) -> type:
    """The config dataclass of plugin ``name``'s options (its factory's keyword parameters,
    less ``registry.fixed``); an unknown name lists the registered ones."""
    return _schema(registry, name, registry.get(name))


def plugin_options(section: Any, schema: type) -> dict[str, Any]:
    """The values of ``schema``'s fields in config ``section`` (factory keyword arguments)."""
    return {f.name: getattr(section, f.name) for f in dataclasses.fields(schema)}


@dataclasses.dataclass(frozen=True)
class PluginSection:
    """A config section naming one plugin of ``registry`` in its ``variant_key`` field; the
    plugin's options are the section's other keys (next to the fields a subclass declares).

    The typed config calls :meth:`config_variant` with the chosen name and builds the section
    as that variant, a subclass with the plugin's options added as fields.
    """

    registry: ClassVar[Registry]
    variant_key: ClassVar[str | None] = "name"  # the field that names the plugin (None: none)
    context_key: ClassVar[str | None] = None  # or the load context's entry that names it
    variant_label: ClassVar[str] = ""
    variant_choice: ClassVar[str | None] = None  # set on each variant

    @classmethod
    def config_variant(cls, choice: str | None, context: Mapping[str, Any]) -> type:
        """This section with plugin ``choice``'s options as fields (``None``: no plugin)."""
        if cls.context_key is not None:
            if cls.context_key not in context:
                raise SpeedyNASError(f"its keys depend on the {cls.context_key}; load it with "
                                     f"context={{{cls.context_key!r}: ...}}")
            choice = context[cls.context_key]
        if choice is None:
            return cls
        if choice not in cls.registry:
            raise SpeedyNASError(f"unknown {cls.registry.kind} {choice!r}; registered: "
                                 f"{', '.join(cls.registry.names())}")
        return _variant(cls, choice, options_schema(cls.registry, choice))

    @classmethod
    def config_variants(cls, context: Mapping[str, Any]) -> list[tuple[tuple[str, str], type]]:
        """Every variant with the key and choice that select it (for ``--list-keys``)."""
        key = cls.variant_key or cls.context_key
        return [((key, name), _variant(cls, name, options_schema(cls.registry, name)))
                for name in cls.registry.names()]

    @classmethod
    def config_key_hint(cls, key: str) -> str | None:
        """Which other plugins take ``key`` (for the error that refuses it)."""
        owners = [name for name in cls.registry.names()
                  if key in {f.name for f in dataclasses.fields(options_schema(cls.registry, name))}]
        if not owners:
            return None
        return f"{key!r} is an option of {cls.registry.kind} {' or '.join(owners)}"

    def options(self) -> dict[str, Any]:
        """The chosen plugin's options: keyword arguments of its factory."""
        if self.variant_choice is None:
            return {}
        return plugin_options(self, options_schema(self.registry, self.variant_choice))


@functools.lru_cache(maxsize=None)
def _variant(base: type, choice: str, options: type) -> type:
    own = {f.name for f in dataclasses.fields(base)}
    clash = own & {f.name for f in dataclasses.fields(options)}
    if clash:
        raise TypeError(f"{base.registry.kind} {choice!r}: options {sorted(clash)} clash with "
                        f"the keys of {base.__name__}")
    return dataclasses.make_dataclass(
        f"{base.__name__}_{choice}",
        [(f.name, f.type, _copy_field(f)) for f in dataclasses.fields(options)],
        bases=(base,), frozen=True, kw_only=True,
        namespace={"variant_label": f" ({base.variant_key or base.context_key} {choice!r})",
                   "variant_base": base, "variant_choice": choice})


def _copy_field(f: dataclasses.Field) -> Any:
    """A fresh field with ``f``'s default and metadata (a field belongs to one class)."""
    if f.default is not dataclasses.MISSING:
        return dataclasses.field(default=f.default, metadata=f.metadata)
    if f.default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=f.default_factory, metadata=f.metadata)
    return dataclasses.field(metadata=f.metadata)
