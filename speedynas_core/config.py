"""Typed configuration: dataclass schemas, YAML files, ``section.key=value`` overrides.

A schema is a (nested) ``@dataclass``; each field has a type hint from this list:
``int``, ``float``, ``bool``, ``str``, ``Literal[...]``, ``Optional[...]``, ``list[X]``,
``tuple[X, ...]`` / ``tuple[X, Y]`` of scalars, or another dataclass (a section).
Ranges and help text live in the field metadata, most easily through :func:`setting`::

    @dataclass(frozen=True)
    class Optim:
        lr: float = setting(0.025, gt=0, max=10, help="initial learning rate")
        momentum: float = setting(0.9, min=0, max=1)
        milestones: tuple[int, ...] = setting((100, 200), min=0)  # bounds apply per item

    @dataclass(frozen=True)
    class Config:
        optim: Optim = field(default_factory=Optim)
        sampler: Literal["randnas", "fairnas"] = "randnas"

    cfg = load_config(Config, "configs/x.yaml", ["optim.lr=1e-3"])

Metadata keys: ``min``/``max`` (inclusive), ``gt``/``lt`` (exclusive), ``max_items`` (a list's
length; :data:`MAX_LIST_ITEMS` when not given), ``help``. Checks that span several fields belong
in the schema's ``__post_init__`` and raise :class:`SpeedyNASError`.

Every user mistake (unknown key, wrong type, out of range, bad choice, malformed override,
unreadable or non-mapping YAML) raises :class:`SpeedyNASError` with a one-line message, before
any work starts. YAML is read with a safe loader (no code runs) that also reads ``1e-3`` as a
float, refuses duplicate keys and leaves date-like text as strings. What is read is bounded: the
file's size (:data:`speedynas_core.inputs.CONFIG_LIMIT`), the values its aliases expand to
(:data:`MAX_YAML_VALUES`), its nesting (:data:`MAX_YAML_DEPTH`) and each list's length; text
holds no NUL byte and encodes as UTF-8. A file is read once (:func:`read_config_file`), so a
pipe works as a config.
"""
from __future__ import annotations

import dataclasses
import difflib
import functools
import importlib
import math
import re
import sys
import types
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from .atomic_io import atomic_write_text
from .errors import SpeedyNASError, shown
from .inputs import CONFIG_LIMIT, read_input_text

T = TypeVar("T")

__all__ = [
    "MAX_LIST_ITEMS", "MAX_YAML_DEPTH", "MAX_YAML_VALUES", "ConfigFile", "config_diff",
    "config_to_dict", "dump_config", "format_schema_help", "load_config", "parse_override",
    "read_config_file", "replace_path", "save_config", "setting",
]

_BOUND_KEYS = ("min", "max", "gt", "lt")
_META_KEYS = frozenset(_BOUND_KEYS + ("help", "max_items"))
#: The longest list a config value may hold, unless its field sets ``max_items``.
MAX_LIST_ITEMS = 1000
#: The most values a YAML document may expand to (aliases counted at every use).
MAX_YAML_VALUES = 100_000
#: The deepest nesting of mappings and lists a YAML document may hold.
MAX_YAML_DEPTH = 32
_SCALARS = (int, float, bool, str)
_NONE = type(None)


# --------------------------------------------------------------------------- YAML dialect

_FLOAT_TAG = "tag:yaml.org,2002:float"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
# YAML 1.2 style floats that YAML 1.1 reads as strings: 1e-3, 5E4, -2e+3, .5e3, 1.e3
_EXP_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)[eE][-+]?[0-9]+$")


def _dialect_resolvers(base: type) -> dict:
    resolvers = {
        first: [r for r in entries if r[0] != _TIMESTAMP_TAG]
        for first, entries in base.yaml_implicit_resolvers.items()
    }
    for first in "0123456789+-.":
        resolvers.setdefault(first, []).append((_FLOAT_TAG, _EXP_FLOAT))
    return resolvers


class _Loader(yaml.SafeLoader):
    """Safe loader: exponent floats without a dot, no timestamps, duplicate keys refused."""

    yaml_implicit_resolvers = _dialect_resolvers(yaml.SafeLoader)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                duplicate = key in seen
            except TypeError:  # unhashable key: the base class reports it
                break
            if duplicate:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {shown(key)}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


class _Dumper(yaml.SafeDumper):
    """Safe dumper that quotes every string :class:`_Loader` would not read back as a string."""

    yaml_implicit_resolvers = _dialect_resolvers(yaml.SafeDumper)


# Sections in block style (one key per line), lists of scalars inline: ``budgets: [100, 200]``.
_Dumper.add_representer(list, lambda dumper, data: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", data, flow_style=True))


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _yaml_error(err: yaml.YAMLError, source: str) -> SpeedyNASError:
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    where = f"{source}:{mark.line + 1}:{mark.column + 1}" if mark is not None else source
    detail = f"{context}: {problem}" if context else problem
    return SpeedyNASError(_one_line(f"{where}: invalid YAML: {detail}"))


def _expanded_size(node: yaml.Node, depth: int, sizes: dict[int, int],
                   open_nodes: set[int]) -> int:
    """How many values ``node`` stands for once every alias is expanded (``sizes`` memoises
    shared nodes, so a billion-laughs document is measured in linear time)."""
    if depth > MAX_YAML_DEPTH:
        raise SpeedyNASError(f"nests deeper than {MAX_YAML_DEPTH} levels")
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        raise SpeedyNASError("holds a recursive alias (an alias inside the value it names)")
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [part for pair in node.value for part in pair]
    open_nodes.add(key)
    size = 1
    for child in children:
        size += _expanded_size(child, depth + 1, sizes, open_nodes)
        if size > MAX_YAML_VALUES:
            raise SpeedyNASError(f"expands to more than {MAX_YAML_VALUES:,} values (aliases "
                                 "are counted at every use)")
    open_nodes.discard(key)
    sizes[key] = size
    return size


def _load_yaml(text: str) -> Any:
    """``text`` parsed by the safe :class:`_Loader`, bounded in expansion and depth (a
    :class:`SpeedyNASError` says which bound it breaks; bad syntax raises ``yaml.YAMLError``)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _expanded_size(node, 0, {}, set())
        return loader.construct_document(node)
    except RecursionError:
        raise SpeedyNASError(f"nests deeper than {MAX_YAML_DEPTH} levels") from None
    finally:
        loader.dispose()


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """A config file's parsed contents, read once (a pipe or process substitution can be read
    only once); :func:`load_config` takes it wherever it takes a path."""

    path: str
    data: Any


def read_config_file(path: str | Path | ConfigFile) -> ConfigFile:
    """The YAML file at ``path``, read once within :data:`speedynas_core.inputs.CONFIG_LIMIT` and parsed
    (``path`` already read: returned as it is)."""
    if isinstance(path, ConfigFile):
        return path
    text = read_input_text(path, "config file", CONFIG_LIMIT)
    try:
        return ConfigFile(str(path), _load_yaml(text))
    except yaml.YAMLError as err:
        raise _yaml_error(err, str(path)) from None
    except SpeedyNASError as err:
        raise SpeedyNASError(f"config file {path} is refused: its YAML {err}") from None


# --------------------------------------------------------------------------- schema helpers

def setting(default: Any = dataclasses.MISSING, *, min: float | None = None,
            max: float | None = None, gt: float | None = None, lt: float | None = None,
            max_items: int | None = None, help: str = "",
            default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with range metadata (``min``/``max`` inclusive, ``gt``/``lt`` exclusive;
    ``max_items``: a list's longest length).

    Mutable defaults (lists) are copied per instance automatically.
    """
    meta: dict[str, Any] = {"help": help}
    for key, value in (("min", min), ("max", max), ("gt", gt), ("lt", lt),
                       ("max_items", max_items)):
        if value is not None:
            meta[key] = value
    if isinstance(default, list):
        items = list(default)
        return dataclasses.field(default_factory=lambda: list(items), metadata=meta)
    return dataclasses.field(default=default, default_factory=default_factory, metadata=meta)


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _union_args(tp: Any) -> tuple | None:
    origin = get_origin(tp)
    if origin is Union or origin is types.UnionType:
        return get_args(tp)
    return None


def _section_of(tp: Any) -> type | None:
    """The dataclass behind ``Section`` or ``Optional[Section]``, else None."""
    if _is_section(tp):
        return tp
    args = _union_args(tp)
    if args is not None:
        sections = [a for a in args if _is_section(a)]
        if len(sections) == 1 and all(a is _NONE or _is_section(a) for a in args):
            return sections[0]
    return None


def _describe(tp: Any) -> str:
    """A short, user-facing name of a type hint."""
    if tp is _NONE:
        return "null"
    if _is_section(tp):
        return "a mapping (section)"
    if isinstance(tp, type):
        return tp.__name__
    args = _union_args(tp)
    if args is not None:
        return " or ".join(_describe(a) for a in args)
    origin = get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(c) for c in get_args(tp))
    if origin in (list, tuple):
        args = get_args(tp)
        if origin is list or (len(args) == 2 and args[1] is Ellipsis):
            return f"list of {_describe(args[0])}"
        return f"list of {len(args)} items [{', '.join(_describe(a) for a in args)}]"
    return str(tp)


def _check_type(tp: Any, where: str, in_sequence: bool = False) -> None:
    if tp in _SCALARS or tp is _NONE:
        return
    if _is_section(tp) and not in_sequence:
        _fields(tp)
        return
    origin = get_origin(tp)
    args = get_args(tp)
    if origin is Literal:
        if args and all(type(c) in _SCALARS for c in args):
            return
    elif _union_args(tp) is not None:
        for arg in args:
            _check_type(arg, where, in_sequence)
        return
    elif origin in (list, tuple) and not in_sequence and args:
        items = args[:1] if origin is tuple and len(args) == 2 and args[1] is Ellipsis else args
        if origin is list and len(args) != 1:
            items = ()
        if items:
            for arg in items:
                _check_type(arg, where, in_sequence=True)
            return
    raise TypeError(f"config schema field {where}: unsupported type {tp!r}")


@functools.lru_cache(maxsize=None)
def _fields(schema: type) -> tuple[tuple[dataclasses.Field, Any], ...]:
    """The init fields of a schema with resolved type hints; checks the schema once."""
    if not _is_section(schema):
        raise TypeError(f"config schema must be a dataclass type, got {schema!r}")
    hints = get_type_hints(schema)
    result = []
    for f in dataclasses.fields(schema):
        if not f.init:
            continue
        where = f"{schema.__name__}.{f.name}"
        tp = hints[f.name]
        _check_type(tp, where)
        unknown = set(f.metadata) - _META_KEYS
        if unknown:
            raise TypeError(f"config schema field {where}: unknown metadata {sorted(unknown)}; "
                            f"allowed: {sorted(_META_KEYS)}")
        for key in _BOUND_KEYS:
            bound = f.metadata.get(key)
            if bound is not None and (isinstance(bound, bool)
                                      or not isinstance(bound, (int, float))):
                raise TypeError(f"config schema field {where}: {key} must be a number")
        _check_default(f, tp, where)
        result.append((f, tp))
    return tuple(result)


def _check_default(f: dataclasses.Field, tp: Any, where: str) -> None:
    """A schema's own default must fit its type and range (else saved configs would not
    round-trip)."""
    default = _default(f)
    if default is dataclasses.MISSING or _section_of(tp) is not None and default is not None:
        return
    try:
        coerced = _coerce(default, tp)
    except _Mismatch:
        coerced = _MISMATCH
    if coerced is _MISMATCH or coerced != default or type(coerced) is not type(default) \
            and not (type(coerced) is float and type(default) is int):
        raise TypeError(f"config schema field {where}: default {default!r} does not match "
                        f"its type {_describe(tp)}")
    problem = _range_problem(coerced, f.metadata)
    if problem:
        raise TypeError(f"config schema field {where}: default {problem}")


_MISMATCH = object()


# --------------------------------------------------------------------------- validation

class _Mismatch(Exception):
    """A value does not fit a type; ``detail`` overrides the generic message."""

    def __init__(self, detail: str | None = None, complete: bool = False) -> None:
        super().__init__(detail)
        self.detail = detail
        self.complete = complete  # the detail says it all (an invalid choice, a NUL byte...)


def _show(value: Any) -> str:
    return "null" if value is None else shown(value)


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _checked_text(value: str) -> str:
    """``value``, if it is text a file name or a YAML file can hold (no NUL, valid UTF-8)."""
    if "\x00" in value:
        raise _Mismatch(f"{_show(value)} holds a NUL byte (at character {value.index(chr(0))}), "
                        "which no file name or text field may hold", complete=True)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Mismatch(f"{_show(value)} is not valid UTF-8 text (character {err.start}: "
                        f"{err.reason})", complete=True) from None
    return value


def _coerce(value: Any, tp: Any, max_items: int = MAX_LIST_ITEMS) -> Any:
    """``value`` converted to ``tp`` (ints become floats; nothing else converts); a list holds
    at most ``max_items`` items."""
    if tp is _NONE:
        if value is None:
            return None
        raise _Mismatch()
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise _Mismatch()
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise _Mismatch()
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                return float(value)
            except OverflowError:
                raise _Mismatch("the number is too large for a float") from None
        raise _Mismatch()
    if tp is str:
        if isinstance(value, str):
            return _checked_text(value)
        raise _Mismatch()
    args = _union_args(tp)
    if args is not None:
        if value is None and _NONE in args:
            return None
        options = [a for a in args if a is not _NONE]
        if len(options) == 1:
            return _coerce(value, options[0], max_items)
        for option in options:
            try:
                return _coerce(value, option, max_items)
            except _Mismatch:
                continue
        raise _Mismatch()
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        for choice in choices:
            if type(value) is type(choice) and value == choice:
                return choice
        raise _Mismatch(_choice_message(value, choices), complete=True)
    if origin in (list, tuple):
        if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
            raise _Mismatch()
        if len(value) > max_items:
            raise _Mismatch(f"{len(value)} items; at most {max_items}", complete=True)
        args = get_args(tp)
        if origin is list or args[-1] is Ellipsis:
            item_types = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise _Mismatch()
            item_types = list(args)
        items = []
        for index, (item, item_tp) in enumerate(zip(value, item_types)):
            try:
                items.append(_coerce(item, item_tp))
            except _Mismatch as err:
                detail = err.detail or (f"expected {_describe(item_tp)}, got {_show(item)} "
                                        f"({_kind(item)})")
                raise _Mismatch(f"item {index}: {detail}", err.complete) from None
        return list(items) if origin is list else tuple(items)
    raise _Mismatch()


def _choice_message(value: Any, choices: tuple) -> str:
    message = f"invalid choice {_show(value)}; choose from {', '.join(repr(c) for c in choices)}"
    names = [c for c in choices if isinstance(c, str)]
    if isinstance(value, str):
        close = difflib.get_close_matches(value, names, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
    return message


def _range_text(meta: Mapping[str, Any]) -> str:
    parts = []
    for key, op in (("gt", ">"), ("min", ">="), ("lt", "<"), ("max", "<=")):
        if meta.get(key) is not None:
            parts.append(f"{op} {meta[key]}")
    return "must be " + " and ".join(parts)


def _in_range(value: float, meta: Mapping[str, Any]) -> bool:
    # Written so that NaN fails every bound.
    checks = (("min", lambda b: value >= b), ("max", lambda b: value <= b),
              ("gt", lambda b: value > b), ("lt", lambda b: value < b))
    return all(meta.get(key) is None or ok(meta[key]) for key, ok in checks)


def _range_problem(value: Any, meta: Mapping[str, Any]) -> str | None:
    """Why ``value`` (a number or a list of numbers) breaks the bounds in ``meta``, if it does."""
    if not any(meta.get(k) is not None for k in _BOUND_KEYS):
        return None
    numbers = value if isinstance(value, (list, tuple)) else [value]
    for index, number in enumerate(numbers):
        if isinstance(number, bool) or not isinstance(number, (int, float)):
            continue
        if not _in_range(number, meta):
            what = f"item {index} ({number!r})" if numbers is value else f"value {number!r}"
            return f"{what} is out of range; {_range_text(meta)}"
    return None


class _Builder:
    """Builds a schema instance from a raw nested mapping, naming where each key came from."""

    def __init__(self, origins: dict[str, str], context: Mapping[str, Any] | None = None) -> None:
        self.origins = origins
        self.context = context or {}

    def _origin(self, key: str) -> str:
        parts = key.split(".")
        for origin_key, origin in self.origins.items():  # an override below this key
            if key and origin_key.startswith(key + "."):
                return f" ({origin})"
        for n in range(len(parts), -1, -1):  # this key or a section above it
            origin = self.origins.get(".".join(parts[:n]))
            if origin:
                return f" ({origin})"
        return ""

    def field_value(self, key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
        try:
            result = _coerce(value, tp, meta.get("max_items", MAX_LIST_ITEMS))
        except _Mismatch as err:
            if err.complete:
                raise SpeedyNASError(f"{key}: {err.detail}{self._origin(key)}") from None
            message = f"{key}: expected {_describe(tp)}, got {_show(value)} ({_kind(value)})"
            if err.detail:
                message += f"; {err.detail}"
            raise SpeedyNASError(message + self._origin(key)) from None
        problem = _range_problem(result, meta)
        if problem:
            raise SpeedyNASError(f"{key}: {problem}{self._origin(key)}")
        return result

    def variant(self, schema: type, raw: Mapping, prefix: str, base: Any) -> type:
        """The schema a variant section is built as (see :func:`load_config`)."""
        key = schema.variant_key
        choice = None
        if key is not None:
            f, tp = next((f, tp) for f, tp in _fields(schema) if f.name == key)
            dotted = f"{prefix}.{key}" if prefix else key
            value = raw[key] if key in raw else (
                getattr(base, key) if base is not None else _default(f))
            choice = self.field_value(dotted, value, tp, f.metadata)
        try:
            return schema.config_variant(choice, self.context)
        except SpeedyNASError as err:
            where = f"{prefix}.{key}" if key else prefix
            raise SpeedyNASError(f"{where}: {err}{self._origin(where)}") from None

    def section(self, schema: type, raw: Any, prefix: str, base: Any = None) -> Any:
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise SpeedyNASError(f"{prefix}: expected a mapping (section), got {_show(raw)} "
                                 f"({_kind(raw)}){self._origin(prefix)}")
        if hasattr(schema, "config_variant"):
            schema = self.variant(schema, raw, prefix, base)
            if base is not None and type(base) is not schema:
                base = None
        label = f"in section {prefix!r}" if prefix else "at the top level"
        label += getattr(schema, "variant_label", "")
        fields = _fields(schema)
        names = [f.name for f, _ in fields]
        for key in raw:
            dotted = f"{prefix}.{key}" if prefix else str(key)
            if not isinstance(key, str):
                raise SpeedyNASError(f"invalid key {_show(key)} {label}: keys must be strings"
                                     f"{self._origin(dotted)}")
            if key not in names:
                message = (f"unknown key {shown(dotted)}{self._origin(dotted)}; valid keys "
                           f"{label}: {', '.join(names) or '(none)'}")
                hint = getattr(schema, "config_key_hint", lambda _: None)(key)
                close = difflib.get_close_matches(key, names, n=1)
                if hint:
                    message += f"; {hint}"
                elif close:
                    hint = f"{prefix}.{close[0]}" if prefix else close[0]
                    message += f"; did you mean {hint!r}?"
                raise SpeedyNASError(message)
        kwargs: dict[str, Any] = {}
        for f, tp in fields:
            dotted = f"{prefix}.{f.name}" if prefix else f.name
            sub = _section_of(tp)
            default = _default(f) if base is None else getattr(base, f.name)
            if f.name in raw:
                value = raw[f.name]
                if sub is not None and (isinstance(value, Mapping) or
                                        (value is None and _NONE not in (_union_args(tp) or ()))):
                    sub_base = default if isinstance(default, sub) else None
                    kwargs[f.name] = self.section(sub, value, dotted, sub_base)
                else:
                    kwargs[f.name] = self.field_value(dotted, value, tp, f.metadata)
            elif sub is not None and hasattr(sub, "config_variant"):
                kwargs[f.name] = self.section(sub, {}, dotted,
                                              default if isinstance(default, sub) else None)
            elif default is not dataclasses.MISSING:
                kwargs[f.name] = default
            elif _is_section(tp):
                kwargs[f.name] = self.section(tp, {}, dotted)
            else:
                raise SpeedyNASError(f"missing required key {dotted!r}")
        try:
            return schema(**kwargs)
        except SpeedyNASError as error:  # a section's own check: say which section
            if prefix and not str(error).startswith(prefix):
                raise SpeedyNASError(f"{prefix}: {error}") from None
            raise


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# --------------------------------------------------------------------------- overrides

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``section.key=value`` into the dotted key and the YAML-parsed value."""
    if not isinstance(text, str) or "=" not in text:
        raise SpeedyNASError(f"malformed override {shown(text)}: expected section.key=value")
    key, _, value_text = text.partition("=")
    key = key.strip()
    if not _KEY.match(key):
        raise SpeedyNASError(f"malformed override {shown(text)}: {shown(key)} is not a dotted "
                             "key like section.key")
    try:
        value = _load_yaml(value_text)
    except yaml.YAMLError as err:
        detail = getattr(err, "problem", None) or str(err)
        raise SpeedyNASError(_one_line(f"malformed override {shown(text)}: cannot parse the "
                                       f"value as YAML: {detail}")) from None
    except SpeedyNASError as err:
        raise SpeedyNASError(f"malformed override {shown(text)}: its YAML {err}") from None
    return key, value


def _merge(target: dict, value: Any) -> Any:
    if isinstance(value, Mapping):
        for key, item in value.items():
            old = target.get(key)
            target[key] = _merge(dict(old), item) if isinstance(old, Mapping) else item
        return target
    return value


def _apply_override(raw: dict, text: str, origins: dict[str, str]) -> None:
    key, value = parse_override(text)
    parts = key.split(".")
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, Mapping):
            dotted = ".".join(parts[:depth + 1])
            raise SpeedyNASError(f"override {shown(text)}: {shown(dotted)} holds {_show(child)}, "
                                 "not a section")
        else:
            child = node[part] = dict(child)
        node = child
    old = node.get(parts[-1])
    if isinstance(old, Mapping) and isinstance(value, Mapping):
        node[parts[-1]] = _merge(dict(old), value)
    else:
        node[parts[-1]] = value
    origins[key] = f"from override {shown(text, 120)}"


# --------------------------------------------------------------------------- public API

ConfigSource = Union[str, Path, ConfigFile, None]


def _raw_config(path: ConfigSource, overrides: Sequence[str] | str | None
                ) -> tuple[dict, dict[str, str]]:
    """The file's mapping with ``overrides`` applied, and where each key came from."""
    raw: Any = {}
    origins: dict[str, str] = {}
    if path is not None:
        source = read_config_file(path)
        raw = {} if source.data is None else source.data
        if not isinstance(raw, Mapping):
            raise SpeedyNASError(f"config file {source.path} must hold a mapping of keys to "
                                 f"values, got {_kind(raw)}")
        origins[""] = f"in {source.path}"
    raw = dict(raw)
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides or ():
        _apply_override(raw, text, origins)
    return raw, origins


def load_config(schema: type[T], path: ConfigSource = None,
                overrides: Sequence[str] | None = None,
                context: Mapping[str, Any] | None = None, trust_plugins: bool = True) -> T:
    """Defaults of ``schema``, then the YAML file at ``path`` (or its :class:`ConfigFile`, read
    once), then ``overrides``; validated.

    Variant sections: a section schema with a ``config_variant(choice, context)`` classmethod
    is built as the schema that method returns, given the value of its ``variant_key`` field
    (``None`` as key: chosen by ``context`` alone), so its valid keys can depend on a choice
    (see :class:`speedynas_core.plugins.PluginSection`). A top-level ``plugins`` field lists modules
    imported before anything is built, so the plugins they register can be chosen.
    ``trust_plugins=False`` (a file the user did not write, such as a run dir's saved config):
    the file's plugins are not imported; each must already be imported, or named again in
    ``overrides``.
    """
    _fields(schema)
    raw, origins = _raw_config(path, overrides)
    builder = _Builder(origins, context)
    _import_plugins(schema, raw, builder, trust_plugins or "plugins" in origins)
    return builder.section(schema, raw, "")


def import_plugins(schema: type, path: ConfigSource = None,
                   overrides: Sequence[str] | None = None) -> None:
    """Import the plugins that the config of ``path`` and ``overrides`` lists (the user's own
    config, before a file that relies on them is loaded untrusted)."""
    raw, origins = _raw_config(path, overrides)
    _import_plugins(schema, raw, _Builder(origins), trusted=True)


def _import_plugins(schema: type, raw: Mapping, builder: _Builder, trusted: bool) -> None:
    fields = {f.name: (f, tp) for f, tp in _fields(schema)}
    if "plugins" not in fields or "plugins" not in raw:
        return
    f, tp = fields["plugins"]
    modules = builder.field_value("plugins", raw["plugins"], tp, f.metadata) or ()
    if not trusted:
        untrusted = [m for m in modules if m not in sys.modules]
        if untrusted:
            listing = ", ".join(untrusted)
            raise SpeedyNASError(
                f"plugins: {builder.origins.get('', 'the config').removeprefix('in ')} asks to "
                f"import {listing}, which this command did not name; speedynas imports only "
                f"the plugins you name: add plugins=[{listing}] if you trust them")
        return
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise SpeedyNASError(f"plugins: cannot import module {module!r} ({_brief(err)}); "
                                 "list modules importable from this Python") from None
        except Exception as err:  # noqa: BLE001 - a plugin's own failure, named as such
            raise SpeedyNASError(f"plugins: module {module!r} failed on import: "
                                 f"{type(err).__name__}: {_brief(err)}") from None


def _brief(err: BaseException) -> str:
    """An exception's message on one line, at most 300 characters."""
    text = _one_line(str(err))
    return text if len(text) <= 300 else text[:297] + "..."


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """``cfg`` as plain YAML-able types (sections as dicts, tuples as lists), in field order."""
    if not (dataclasses.is_dataclass(cfg) and not isinstance(cfg, type)):
        raise TypeError(f"expected a config dataclass instance, got {type(cfg).__name__}")
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg) if f.init}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return config_to_dict(value)
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    return value


def dump_config(cfg: Any) -> str:
    """``cfg`` as YAML text that :func:`load_config` reads back to an equal value."""
    return yaml.dump(config_to_dict(cfg), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True)


def save_config(cfg: Any, path: str | Path) -> None:
    """Write ``cfg`` as YAML to ``path`` atomically."""
    atomic_write_text(path, dump_config(cfg))


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    else:
        out[prefix] = value
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b or (
        isinstance(a, (int, float)) and isinstance(b, (int, float))
        and not isinstance(a, bool) and not isinstance(b, bool) and a == b)


def config_diff(a: Any, b: Any) -> list[str]:
    """Dotted keys whose values differ between two configs (or plain dicts), in order."""
    flat_a = _flatten(a if isinstance(a, Mapping) else config_to_dict(a), "", {})
    flat_b = _flatten(b if isinstance(b, Mapping) else config_to_dict(b), "", {})
    keys = list(flat_a) + [k for k in flat_b if k not in flat_a]
    missing = object()
    return [k for k in keys
            if not _same(_plain(flat_a.get(k, missing)), _plain(flat_b.get(k, missing)))]


def replace_path(cfg: T, key: str, value: Any) -> T:
    """A copy of ``cfg`` with the dotted ``key`` set to ``value`` (validated like an override)."""
    return _replace(cfg, key.split("."), "", value)


def _replace(cfg: Any, parts: list[str], prefix: str, value: Any) -> Any:
    head, rest = parts[0], parts[1:]
    dotted = f"{prefix}.{head}" if prefix else head
    fields = {f.name: (f, tp) for f, tp in _fields(type(cfg))}
    if head not in fields:
        where = f"in section {prefix!r}" if prefix else "at the top level"
        raise SpeedyNASError(f"unknown key {dotted!r}; valid keys {where}: {', '.join(fields)}")
    f, tp = fields[head]
    sub = _section_of(tp)
    if hasattr(type(cfg), "config_variant"):  # the choice may change the valid keys
        raw = node = config_to_dict(cfg)
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = _plain(value)
        return _Builder({}).section(getattr(type(cfg), "variant_base", type(cfg)), raw, prefix)
    if rest:
        current = getattr(cfg, head)
        if not (dataclasses.is_dataclass(current) and not isinstance(current, type)):
            raise SpeedyNASError(f"{dotted!r} is not a section; cannot set "
                                 f"{'.'.join([dotted, *rest])!r}")
        new = _replace(current, rest, dotted, value)
    elif sub is not None and isinstance(value, (Mapping, sub)):
        if not isinstance(value, Mapping):
            value = config_to_dict(value)
        new = _Builder({}).section(sub, value, dotted)
    else:
        new = _Builder({}).field_value(dotted, value, tp, f.metadata)
    return dataclasses.replace(cfg, **{head: new})


def _inline(value: Any) -> str:
    text = yaml.dump(_plain(value), Dumper=_Dumper, default_flow_style=True, width=10**6)
    text = text.strip()
    return text[:-3].strip() if text.endswith("...") else text


def format_schema_help(schema: type, prefix: str = "",
                       context: Mapping[str, Any] | None = None) -> str:
    """One line per key: ``section.key: type = default  [range]  help`` (for ``--list-keys``).

    A variant section lists its own keys, then each variant's keys tagged with its choice
    (``config_variants(context)`` gives ``((key, choice), schema)`` pairs; a key ending in
    ``[]`` is a list that chooses by membership).
    """
    lines = []
    for f, tp in _fields(schema):
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        sub = _section_of(tp)
        if sub is not None and _NONE not in (_union_args(tp) or ()):
            lines.append(format_schema_help(sub, dotted, context))
        else:
            lines.append(_help_line(f, tp, dotted))
    own = {f.name for f, _ in _fields(schema)}
    tagged: dict[str, list[str]] = {}  # a variant's key line -> the choices that have it
    key = ""
    for (key, choice), variant in getattr(schema, "config_variants", lambda _: [])(context or {}):
        for f, tp in _fields(variant):
            if f.name not in own:
                dotted = f"{prefix}.{f.name}" if prefix else f.name
                sub = _section_of(tp)
                text = (format_schema_help(sub, dotted, context) if sub is not None
                        else _help_line(f, tp, dotted))
                for line in text.splitlines():
                    tagged.setdefault(line, []).append(choice)
    for line, choices in tagged.items():
        when = (f"when {key[:-2]} lists {' or '.join(choices)}" if key.endswith("[]")
                else f"{key}={'|'.join(choices)}")
        lines.append(f"{line}  ({when})")
    return "\n".join(line for line in lines if line)


def _help_line(f: dataclasses.Field, tp: Any, dotted: str) -> str:
    default = _default(f)
    shown = "(required)" if default is dataclasses.MISSING else _inline(default)
    line = f"{dotted}: {_describe(tp)} = {shown}"
    if any(f.metadata.get(k) is not None for k in _BOUND_KEYS):
        line += f"  [{_range_text(f.metadata)}]"
    if f.metadata.get("help"):
        line += f"  {f.metadata['help']}"
    return line
