"""Typed loading: a YAML or JSON file into dataclasses, in one place for scenarios, profiles
and datasheets. Unknown keys, missing keys, wrong types and non-finite numbers are rejected
with the file name, the key's path (`network.uplink_mbps[2]`) and what would be valid.

Field types: int (64-bit), float (finite; an int is accepted), str (no NUL character), bool,
Literal[...], `X | None`, list[X] (a single value stands for a one-item list), dict[str, X],
nested dataclasses, and Any for free-form data (a profile's `derivation`): mappings with
string keys, lists, strings, finite numbers, booleans and null. A field declared with
`field(metadata=NOT_IN_FILE)` is set by the caller, never read from the file.

Reading (`read_yaml`, `read_json`) goes through `files.read_text` (missing, folder, too big,
not UTF-8) and turns every parser error into one line. YAML is read safely (no tags that run
code), with two changes to PyYAML's YAML 1.1 reading: a duplicate key is an error rather than
a silent overwrite, and `1e6` is the number 10^6 (YAML 1.1 reads it as a string) as in JSON
and YAML 1.2. Aliases share one object, so an alias "bomb" costs no memory; the walk below
stops at the first value of the wrong type, so it never expands one either.
"""
import dataclasses
import functools
import json
import math
import re
import reprlib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .files import read_text

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # integers are 64-bit, as numpy and torch store them
NOT_IN_FILE = {"in_file": False}  # dataclass field metadata: set by the caller, not a key of the file

_SHORT = reprlib.Repr()  # values in messages: one line, bounded whatever the input (a 4 MB string, a deep list)
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlong, _SHORT.maxlevel = 60, 60, 40, 3


def shown(value: Any) -> str:
    """A short one-line repr of `value` for an error message."""
    return _SHORT.repr(value)


# ---- reading -------------------------------------------------------------------------------

class _YamlLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml's parser where installed: 20x faster
    """Safe YAML loading; duplicate keys are errors; 1e6 is a number."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                except TypeError:  # unhashable: the base class reports it
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError("while constructing a mapping", node.start_mark,
                                                            f"found duplicate key {shown(key)}", key_node.start_mark)
                seen.add(key)
        return super().construct_mapping(node, deep)


_YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def read_yaml(path: str | Path, what: str) -> Any:
    """The data of a YAML file (`what`: "scenario"), or a one-line UserError naming the file."""
    text = read_text(path, what)
    try:
        return yaml.load(text, Loader=_YamlLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserError(f"{path}: malformed YAML{where}: {first_line(exc.problem or exc.context)}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: malformed YAML: {first_line(exc)}") from None
    except (ValueError, OverflowError) as exc:  # a value the constructors cannot take: 2001-13-45, 10^5000
        raise UserError(f"{path}: malformed YAML: {first_line(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: malformed YAML: nested too deeply") from None


def read_json(path: str | Path, what: str) -> Any:
    """The data of a JSON file (`what`: "profile", "datasheet"), or a one-line UserError naming
    the file. A key given twice in one object is an error."""
    text = read_text(path, what)

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out = {}
        for key, value in pairs:
            if key in out:
                raise UserError(f"{path}: key {shown(key)} is given twice in one object")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique)
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except ValueError as exc:  # an integer of more than 4,300 digits
        raise UserError(f"{path}: not valid JSON: {first_line(exc)}") from None
    except RecursionError:
        raise UserError(f"{path}: not valid JSON: nested too deeply") from None


def first_line(message: Any) -> str:
    """The first line of a library's message, without Python's advice about its own settings."""
    lines = str(message).strip().splitlines()
    return lines[0].split("; use sys.set_int_max_str_digits")[0] if lines else "unreadable"


# ---- building ------------------------------------------------------------------------------

class _WrongType(UserError):
    """The value has the wrong type (as opposed to the right type with a bad value, e.g. NaN)."""


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list, each {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping to {type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false", type(None): "null",
            Any: "plain data"}.get(tp, str(tp))


def key_text(name: Any) -> str:
    """A key as it appears in a message: plain when it is a simple string, else its short repr."""
    return name if isinstance(name, str) and name.isprintable() and 0 < len(name) <= 60 else shown(name)


def build(tp: Any, value: Any, file: str, key: str) -> Any:
    """Convert `value` (parsed YAML or JSON) to type `tp`, or raise a UserError naming `file` and `key`."""
    origin = typing.get_origin(tp)

    def wrong() -> _WrongType:
        return _WrongType(f"{file}: {key} must be {type_name(tp)}, got {shown(value)}")

    if dataclasses.is_dataclass(tp):
        return build_dataclass(tp, value, file, key)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return build(arg, value, file, key)
            except _WrongType:
                continue  # a value of the right type with a bad value (NaN) is reported as it is
        raise wrong()
    if origin is typing.Literal:
        if not any(type(value) is type(a) and value == a for a in typing.get_args(tp)):
            raise _WrongType(f"{file}: {key} {shown(value)} is not valid; valid: "
                             + ", ".join(str(a) for a in typing.get_args(tp)))
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, list):
            items = value
        elif value is not None and not isinstance(value, dict):
            items = [value]  # a single value stands for a one-item list (uplink_mbps: 1.0)
        else:
            raise wrong()
        return [build(item, v, file, f"{key}[{i}]") for i, v in enumerate(items)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise wrong()
        for k in value:
            if not isinstance(k, str):
                raise _WrongType(f"{file}: {key} has the key {shown(k)}; keys must be strings")
        return {k: build(item, v, file, f"{key}.{key_text(k)}") for k, v in value.items()}
    if tp is Any:
        check_plain(value, file, key)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise wrong()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise wrong()
        return checked_int(value, file, key)
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise wrong()
        return checked_float(value, file, key)
    if tp is str:
        if not isinstance(value, str):
            raise wrong()
        if "\0" in value:
            raise UserError(f"{file}: {key} {shown(value)} contains a NUL character")
        return value
    raise TypeError(f"unsupported field type {tp}")


def checked_int(value: int, file: str, key: str) -> int:
    if not INT64_MIN <= value <= INT64_MAX:
        raise UserError(f"{file}: {key} {shown(value)} is out of range; integers are 64-bit "
                        f"(at most {INT64_MAX:,})")
    return value


def checked_float(value: float, file: str, key: str) -> float:
    try:
        number = float(value)
    except OverflowError:  # an integer beyond 1.8e308
        number = math.inf
    if not math.isfinite(number):
        raise UserError(f"{file}: {key} must be a finite number, got {shown(value)}")
    return number


def check_plain(value: Any, file: str, key: str) -> None:
    """Free-form data (Any) must still be plain and finite: mappings with string keys, lists,
    strings, finite numbers, booleans, null. Walked without recursion; each shared object once."""
    stack, seen = [(value, key)], set()
    while stack:
        item, where = stack.pop()
        if isinstance(item, dict):
            if id(item) in seen:
                continue
            seen.add(id(item))
            for k, v in item.items():
                if not isinstance(k, str):
                    raise UserError(f"{file}: {where} has the key {shown(k)}; keys must be strings")
                stack.append((v, f"{where}.{key_text(k)}"))
        elif isinstance(item, list):
            if id(item) in seen:
                continue
            seen.add(id(item))
            stack.extend((v, f"{where}[{i}]") for i, v in enumerate(item))
        elif isinstance(item, float) or (isinstance(item, int) and not isinstance(item, bool)):
            checked_float(item, file, where)
        elif item is not None and not isinstance(item, (str, bool)):
            raise _WrongType(f"{file}: {where} must be plain data (a mapping, list, string, number, true/false or "
                             f"null), got {shown(item)}")


@functools.cache
def file_fields(cls: type) -> tuple[dict[str, dataclasses.Field], dict[str, Any]]:
    """The fields of `cls` read from a file, and their types (resolved once per class)."""
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.metadata.get("in_file", True)}
    return fields, typing.get_type_hints(cls)


def build_dataclass(cls: type, value: Any, file: str, key: str = "") -> Any:
    """Build dataclass `cls` from a mapping (None stands for an empty one), field by field."""
    where = key or "top level"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise _WrongType(f"{file}: {where} must be a mapping, got {shown(value)}")
    fields, hints = file_fields(cls)
    for name in value:
        if name not in fields:
            path = f"{key}.{key_text(name)}" if key else key_text(name)
            raise UserError(f"{file}: unknown key {path}; valid keys{' of ' + key if key else ''}: "
                            + ", ".join(fields))
    kwargs = {}
    for name, spec in fields.items():
        path = f"{key}.{name}" if key else name
        if name in value:
            kwargs[name] = build(hints[name], value[name], file, path)
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise UserError(f"{file}: missing key {path} ({type_name(hints[name])})")
    return cls(**kwargs)
