"""Typed loading of YAML into dataclasses: unknown keys, wrong types and bad values are
rejected with the file name, the key's path and what would be valid.

Supported field types: int, float, str, bool, Literal[...], `X | None`, list[X],
dict[str, X] and nested dataclasses.
"""
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError


def read_yaml(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: scenario file not found")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UserError(f"{path}: malformed YAML{where}: {problem}") from None


def type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(type_name(a) for a in typing.get_args(tp))
    if origin is list:
        return f"a list of {type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return f"a mapping to {type_name(typing.get_args(tp)[1])}"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", str: "a string", bool: "true or false",
            type(None): "null"}.get(tp, str(tp))


def build(tp: Any, value: Any, file: str, key: str) -> Any:
    """Convert `value` (from YAML) to type `tp`, or raise UserError naming `file` and `key`."""
    origin = typing.get_origin(tp)

    def bad() -> UserError:
        return UserError(f"{file}: {key} must be {type_name(tp)}, got {value!r}")

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
            except UserError:
                continue
        raise bad()
    if origin is typing.Literal:
        if value not in typing.get_args(tp):
            raise UserError(f"{file}: {key} {value!r} is not valid; valid: "
                            + ", ".join(str(a) for a in typing.get_args(tp)))
        return value
    if origin is list:
        (item,) = typing.get_args(tp)
        if isinstance(value, list):
            items = value
        elif value is not None and not isinstance(value, dict):
            items = [value]  # a single value stands for a one-item list (uplink_mbps: 1.0)
        else:
            raise bad()
        return [build(item, v, file, f"{key}[{i}]") for i, v in enumerate(items)]
    if origin is dict:
        _, item = typing.get_args(tp)
        if not isinstance(value, dict):
            raise bad()
        return {str(k): build(item, v, file, f"{key}.{k}") for k, v in value.items()}
    if tp is bool:
        if not isinstance(value, bool):
            raise bad()
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise bad()
        return value
    raise TypeError(f"unsupported config type {tp}")


def build_dataclass(cls: type, value: Any, file: str, key: str) -> Any:
    where = key or "top level"
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise UserError(f"{file}: {where} must be a mapping, got {value!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    for name in value:
        if name not in fields:
            path = f"{key}.{name}" if key else str(name)
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
