"""Strict YAML for numasim's configuration files (machines, workloads, experiments).

A configuration file is read in two steps: :func:`parse_yaml` reads YAML with ``safe_load``
semantics but remembers the line of every mapping key and list item (and rejects duplicate
keys, which plain PyYAML silently drops); then a pydantic model with ``extra="forbid"`` checks
the structure.  :func:`validation_problems` turns pydantic's errors into :class:`Problem` s that
name the file, the line, the dotted field (``nodes[1].memory``) and, for an unknown key, the
closest valid key -- every problem of the file at once, never only the first.

The annotated types below (:data:`Size`, :data:`TimeNs`, :data:`BandwidthGBps`,
:data:`FreqGHz`, :data:`IdList`) read quantities with units through :mod:`numasim.units`, so a
bare ``192`` where ``192GiB`` is meant is an error that says which unit to add.
"""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, ValidationError

from numasim import units
from numasim.bitmap import parse_list
from numasim.errors import ConfigError, Problem, closest

Loc = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's parser when PyYAML has it: the same events, nodes and errors, ten times faster
(a 1024-node machine's 1M-entry distance matrix)."""


# ------------------------------------------------------------------------ reading YAML
@dataclass
class YamlDoc:
    """A parsed YAML document and where each of its keys and items is."""

    data: Any
    file: str | None = None
    lines: dict[Loc, int] = field(default_factory=dict)
    """``(key, index, key...)`` path -> 1-based line of that key or list item."""
    problems: list[Problem] = field(default_factory=list)
    """Duplicate keys found while reading (the data keeps the last one, as PyYAML does)."""

    def line(self, loc: Iterable[str | int]) -> int | None:
        """Line of ``loc``, or of its nearest enclosing key or item that has one."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), None)


def _key_value(loader: Any, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_object(node, deep=True)
    return None  # complex keys (lists as keys) are not tracked


def _walk(loader: Any, node: yaml.Node, loc: Loc, doc: YamlDoc,
          stack: set[int]) -> None:
    if id(node) in stack:  # a recursive alias: nothing more to learn
        return
    stack = stack | {id(node)}
    if isinstance(node, yaml.MappingNode):
        seen: dict[Any, int] = {}
        for knode, vnode in node.value:
            if knode.tag == "tag:yaml.org,2002:merge":
                continue
            key = _key_value(loader, knode)
            line = knode.start_mark.line + 1
            try:
                hash(key)
            except TypeError:
                continue
            if key in seen:
                doc.problems.append(Problem(
                    f"key '{key}' appears twice (first on line {seen[key]}); only the last one "
                    "would count", file=doc.file, field=dotted(loc + (key,)), line=line,
                    hint="remove one of them"))
            seen[key] = line
            doc.lines.setdefault(loc + (key,), line)
            _walk(loader, vnode, loc + (key,), doc, stack)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            doc.lines.setdefault(loc + (i,), item.start_mark.line + 1)
            _walk(loader, item, loc + (i,), doc, stack)


MAX_DEPTH = 64
"""Deepest nesting of lists and mappings a configuration may have (the shipped ones use 6);
PyYAML composes recursively, so 20 000 nested ``[`` would end in a RecursionError."""
MAX_EXPANDED_NODES = 1_000_000
"""Most values a document may hold once its aliases are expanded (at least; see
:func:`_precheck`).  Nine levels of nine aliases make 387 million from 395 bytes."""


def _precheck(text: str, file: str | None) -> None:
    """Refuse deep nesting and alias bombs from the event stream, before anything recursive
    or exponential runs: PyYAML's parser is a loop, its composer and constructor recurse, and
    every reader of the data walks aliases once per use."""
    sizes: dict[str, int] = {}
    stack: list[list] = [[None, 0]]  # [anchor, expanded size] of each open collection
    distinct = 0
    for ev in yaml.parse(text, Loader=_Loader):
        if isinstance(ev, yaml.CollectionStartEvent):
            distinct += 1
            stack.append([ev.anchor, 1])
            if len(stack) - 1 > MAX_DEPTH:
                raise ConfigError(
                    f"lists and mappings nested more than {MAX_DEPTH} deep", file=file,
                    line=ev.start_mark.line + 1,
                    hint="a configuration is a few levels deep; is the file generated "
                         "wrongly?")
            continue
        if isinstance(ev, yaml.CollectionEndEvent):
            anchor, size = stack.pop()
            if anchor is not None:
                sizes[anchor] = size
        elif isinstance(ev, yaml.ScalarEvent):
            distinct += 1
            size = 1
            if ev.anchor is not None:
                sizes[ev.anchor] = 1
        elif isinstance(ev, yaml.AliasEvent):
            size = sizes.get(ev.anchor, 1)  # unknown: the composer says so; open: recursive
        else:
            continue
        stack[-1][1] += size
        if stack[-1][1] > max(MAX_EXPANDED_NODES, 10 * distinct):
            raise ConfigError(
                f"its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} values",
                file=file, line=ev.start_mark.line + 1,
                hint="a YAML alias repeats what its anchor (&name) holds; aliases of aliases "
                     "grow exponentially. Write the values out, or use fewer levels")


def parse_yaml(text: str, *, file: str | None = None) -> YamlDoc:
    """Read one YAML document (safe types only) with the line of every key and item.

    Raises :class:`ConfigError` with the line for text that is not YAML, that nests deeper
    than :data:`MAX_DEPTH` or whose aliases expand past :data:`MAX_EXPANDED_NODES` values.
    """
    loader = None
    try:
        _precheck(text, file)
        loader = _Loader(text)
        node = loader.get_single_node()
        doc = YamlDoc(None, file)
        if node is not None:
            doc.lines[()] = node.start_mark.line + 1
            _walk(loader, node, (), doc, set())
            loader.constructed_objects = {}
            loader.recursive_objects = {}
            doc.data = loader.construct_document(node)
        return doc
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        what = " ".join(x for x in (e.context, e.problem) if x)
        raise ConfigError(f"not valid YAML: {what}", file=file,
                          line=mark.line + 1 if mark else None,
                          hint="check indentation (spaces, not tabs) and that every "
                               "'key: value' has a space after the colon") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"not valid YAML: {e}", file=file) from None
    except (ValueError, OverflowError) as e:  # e.g. a timestamp PyYAML cannot represent
        raise ConfigError(f"not valid YAML: {e}", file=file) from None
    finally:
        if loader is not None:
            loader.dispose()


def safe_load(text: str, *, file: str | None = None) -> Any:
    """The data of a YAML text, as ``yaml.safe_load`` but bounded like :func:`parse_yaml`
    (every YAML numasim reads goes through here)."""
    return parse_yaml(text, file=file).data


def read_text(path: str | os.PathLike) -> str:
    """A configuration file's text, or a ConfigError naming the file."""
    p = Path(path)
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, not a YAML file", file=str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text (byte {e.start})", file=str(path)) from None
    except OSError as e:
        raise ConfigError(f"cannot read: {e.strerror}", file=str(path)) from None


# ----------------------------------------------------------------- pydantic errors
def dotted(loc: Iterable[str | int]) -> str:
    """``('nodes', 1, 'memory')`` -> ``'nodes[1].memory'``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _clean_loc(loc: tuple) -> Loc:
    """Drop pydantic's internal steps (``function-before[...]``, ``[key]``, union tags)."""
    out: list[str | int] = []
    for part in loc:
        if isinstance(part, str) and (part.startswith("function-") or part == "[key]"
                                      or part.startswith(("list[", "dict[", "tuple["))
                                      or part in ("int", "str", "float", "bool")):
            continue
        out.append(part)
    return tuple(out)


def _unwrap(tp: Any) -> Any:
    while True:
        origin = typing.get_origin(tp)
        if origin is Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            tp = models[0] if models else (args[0] if len(args) == 1 else None)
        else:
            return tp


def model_at(model: type[BaseModel], loc: Iterable[str | int]) -> type[BaseModel] | None:
    """The pydantic model that reads the mapping at ``loc`` (None if not a model)."""
    tp: Any = model
    for part in loc:
        tp = _unwrap(tp)
        origin = typing.get_origin(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(part, str):
            found = None
            for name, f in tp.model_fields.items():
                if part in (name, f.alias):
                    found = f
            if found is None:
                return None
            tp = found.annotation
        elif origin in (list, tuple, typing.Sequence) and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif origin is dict:
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def valid_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


_TYPE_WORDS = {
    "int_type": "expected a whole number", "int_from_float": "expected a whole number",
    "int_parsing": "expected a whole number", "float_type": "expected a number",
    "float_parsing": "expected a number", "string_type": "expected text",
    "bool_type": "expected true or false", "list_type": "expected a list",
    "tuple_type": "expected a list", "dict_type": "expected a mapping of 'key: value' lines",
    "model_type": "expected a mapping of 'key: value' lines",
    "model_attributes_type": "expected a mapping of 'key: value' lines",
}

_BOUND_WORDS = {"greater_than_equal": "at least", "greater_than": "more than",
                "less_than_equal": "at most", "less_than": "less than"}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validation_problems(err: ValidationError, doc: YamlDoc, model: type[BaseModel], *,
                        prefix: Loc = ()) -> list[Problem]:
    """Every error of a pydantic validation as a :class:`Problem` with file, line and field.

    ``prefix`` is where in the document the validated data sits (for a sub-document).
    """
    out: list[Problem] = []
    for e in err.errors():
        loc = _clean_loc(tuple(e["loc"]))
        full = prefix + loc
        kind = e["type"]
        hint = None
        if kind == "extra_forbidden":
            key = loc[-1] if loc else "?"
            parent = model_at(model, loc[:-1])
            choices = valid_keys(parent) if parent else []
            message = f"unknown key '{key}'"
            best = closest(str(key), choices) if choices else None
            if choices:
                hint = (f"did you mean '{best}'? " if best else "") + \
                    "valid keys here: " + ", ".join(choices)
            line = doc.line(full)
        elif kind == "missing":
            message = f"missing required key '{loc[-1]}'" if loc else "missing value"
            line = doc.line(full[:-1])
        elif kind in ("value_error", "assertion_error"):
            cause = e.get("ctx", {}).get("error")
            message = str(cause) if cause is not None else e["msg"]
            line = doc.line(full)
        elif kind in _TYPE_WORDS:
            message = f"{_TYPE_WORDS[kind]}, got {_short(e.get('input'))}"
            line = doc.line(full)
        elif kind in ("too_short", "too_long"):
            ctx = e.get("ctx", {})
            bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
            word = "at least" if kind == "too_short" else "at most"
            message = (f"needs {word} {bound} entr{'y' if bound == 1 else 'ies'}, got "
                       f"{ctx.get('actual_length')}: {_short(e.get('input'))}")
            line = doc.line(full)
        elif kind in _BOUND_WORDS:
            bound = next(iter(e.get("ctx", {}).values()), "?")
            message = f"must be {_BOUND_WORDS[kind]} {bound}, got {_short(e.get('input'))}"
            line = doc.line(full)
        else:
            message = f"{e['msg']} (got {_short(e.get('input'))})"
            line = doc.line(full)
        out.append(Problem(message, doc.file, dotted(full) or None, line, hint))
    return out


def sort_problems(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line or 0,))


def validate_model(doc: YamlDoc, model: type[BaseModel], *, what: str = "configuration"
                   ) -> tuple[BaseModel | None, list[Problem]]:
    """Check ``doc.data`` against ``model``: (instance or None, all problems)."""
    problems = list(doc.problems)
    if not isinstance(doc.data, dict):
        got = "an empty file" if doc.data is None else f"{type(doc.data).__name__}"
        problems.append(Problem(f"a {what} file must be a mapping of 'key: value' lines, got "
                                f"{got}", doc.file, None, doc.line(()),
                                "valid top-level keys: " + ", ".join(valid_keys(model))))
        return None, problems
    try:
        obj = model.model_validate(doc.data)
    except ValidationError as e:
        problems += validation_problems(e, doc, model)
        return None, sort_problems(problems)
    return obj, problems


# ------------------------------------------------------------------ typed fields
class StrictModel(BaseModel):
    """Base for configuration schemas: unknown keys and silent conversions are errors."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _unit_reader(parse: Callable[[Any], Any], zero_ok: bool = False) -> Callable[[Any], Any]:
    def read(value: Any) -> Any:
        if zero_ok and type(value) is int and value == 0:
            return 0
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            return parse(value)  # UnitError is a ValueError: pydantic reports its message
        raise ValueError(f"expected a quantity with a unit, got {_short(value)}")
    return read


Size = Annotated[int, BeforeValidator(_unit_reader(units.parse_size, zero_ok=True))]
"""Bytes, written ``64GiB``, ``512MiB``, ``4096B`` (a bare ``0`` is allowed)."""
TimeNs = Annotated[float, BeforeValidator(_unit_reader(units.parse_time_ns))]
"""Nanoseconds, written ``81.2ns``, ``1.5us``."""
BandwidthGBps = Annotated[float, BeforeValidator(_unit_reader(units.parse_bandwidth_GBps))]
"""GB/s (10^9 bytes/s), written ``122GB/s``, ``30562.8MB/s``."""
FreqGHz = Annotated[float, BeforeValidator(_unit_reader(units.parse_freq_GHz))]
"""GHz, written ``2.1GHz``, ``2100MHz``."""


def _id_list(value: Any) -> list[int]:
    """A Linux list string (``0-3,8``), one number, a YAML list of numbers, or nothing."""
    if value is None:
        return []
    if isinstance(value, bool):
        raise ValueError(f"expected a list such as 0-3,8 or [0, 1, 2], got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative")
        return [value]
    if isinstance(value, str):
        try:
            out = parse_list(value)
        except ValueError as e:
            raise ValueError(f"cannot read {value!r} as a list like 0-3,8: {e}") from None
        return out
    if isinstance(value, list | tuple):
        bad = [v for v in value if isinstance(v, bool) or not isinstance(v, int) or v < 0]
        if bad:
            raise ValueError(f"list items must be non-negative whole numbers, got "
                             f"{_short(bad[0])}")
        if len(set(value)) != len(value):
            dup = sorted({v for v in value if list(value).count(v) > 1})
            raise ValueError(f"{dup[0]} is listed twice")
        return sorted(value)
    raise ValueError(f"expected a list such as 0-3,8 or [0, 1, 2], got {_short(value)}")


IdList = Annotated[list[int], BeforeValidator(_id_list)]
"""CPU or node numbers: ``0-23,48-71``, ``5``, ``[0, 1, 2]``, or empty."""


def choice_reader(choices: Iterable[str], what: str) -> Callable[[Any], str]:
    """A before-validator accepting one of ``choices`` (any case), naming the closest."""
    choices = list(choices)

    def read(value: Any) -> str:
        if isinstance(value, str):
            for c in choices:
                if c.lower() == value.strip().lower():
                    return c
            best = closest(value, choices)
            tip = f"did you mean '{best}'? " if best else ""
            raise ValueError(f"unknown {what} {value!r}; {tip}valid: {', '.join(choices)}")
        raise ValueError(f"expected a {what} ({', '.join(choices)}), got {_short(value)}")
    return read


__all__ = ["YamlDoc", "parse_yaml", "safe_load", "read_text", "dotted", "model_at", "valid_keys",
           "validation_problems", "validate_model", "sort_problems", "StrictModel", "Size",
           "TimeNs", "BandwidthGBps", "FreqGHz", "IdList", "choice_reader"]
