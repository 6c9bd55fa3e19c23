"""Settings files read back: :func:`load_dataclass` turns a JSON file into a dataclass or says,
in one line naming the file, what is wrong with it.

``train_config.json`` and a checkpoint's ``config.json`` are plain JSON a user may edit; a
parse error, a list instead of an object or ``"image_size": "64"`` must not surface as a
traceback from deep inside the model. A value's type is checked against its field's default
(``None`` defaults take a string). Only the standard library is imported.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from .errors import read_bytes

T = TypeVar("T")


def read_json_object(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``; ``ValueError`` naming the file if it is not one."""
    try:
        values = json.loads(read_bytes(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path} is not valid JSON ({error}): fix or replace the file.") from None
    if not isinstance(values, dict):
        raise ValueError(
            f"{path} holds a JSON {type(values).__name__}, not an object of settings: fix or "
            "replace the file."
        )
    return values


def load_dataclass(cls: type[T], path: str | Path, **extra: Any) -> T:
    """``cls(**known settings of the file, **extra)``; keys ``cls`` lacks are ignored.

    Raises ``ValueError`` naming the file and the setting for a bad file, a value of the wrong
    type, or a value the dataclass itself refuses."""
    values = read_json_object(path)
    kwargs = {}
    for setting in dataclasses.fields(cls):
        if setting.name in values:
            value = values[setting.name]
            if not _fits(value, _default(setting)):
                raise ValueError(
                    f"{path}: {setting.name}={value!r} has the wrong type (expected "
                    f"{_describe(_default(setting))}): fix or replace the file."
                )
            kwargs[setting.name] = value
    try:
        return cls(**kwargs, **extra)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{path}: {' '.join(str(error).split())}") from None


def _default(setting: dataclasses.Field) -> Any:
    """An example value of ``setting``: its default, or for an optional number (default None,
    ``type`` in its metadata) that type's zero, and None fits as well."""
    if setting.default_factory is not dataclasses.MISSING:
        return setting.default_factory()
    if setting.default is None and setting.metadata.get("type") in (int, float):
        return _Optional(setting.metadata["type"]())
    return setting.default


class _Optional:
    def __init__(self, example: Any) -> None:
        self.example = example


def _fits(value: Any, default: Any) -> bool:
    if isinstance(default, _Optional):
        return value is None or _fits(value, default.example)
    if default is None:
        return value is None or isinstance(value, str)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, tuple):
        return isinstance(value, (list, tuple)) and all(_fits(v, default[0]) for v in value)
    return isinstance(value, type(default))


def _describe(default: Any) -> str:
    if isinstance(default, _Optional):
        return _describe(default.example) + " or null"
    if default is None:
        return "a string or null"
    if isinstance(default, tuple):
        return f"a list of {type(default[0]).__name__}"
    return {bool: "true or false", int: "an integer", float: "a number"}.get(
        type(default), f"a {type(default).__name__}"
    )


__all__ = ["load_dataclass", "read_json_object"]
