"""Read a config file into plain data without letting the file hang, balloon or crash us.

A config is a few kilobytes of mappings, lists and scalars, so everything else is refused with
exit 2 before it costs anything: a path that is not a regular file (a FIFO would block the read
forever), more than ``MAX_BYTES``, text that is not UTF-8, nesting deeper than ``MAX_DEPTH``
(the composer recurses once per level), and YAML aliases (``*name``): a few hundred bytes of
aliases to aliases expand into gigabytes, and a config has no need for them. Integers too long
for any setting become floats (``int()`` refuses over 4,300 digits), so the validator reports
them against the key's bounds; dates stay text; a key given twice is an error, not "last wins".
"""

from __future__ import annotations

import math
import os
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError
from yaml.events import (
    AliasEvent,
    MappingEndEvent,
    MappingStartEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)
from yaml.nodes import MappingNode, ScalarNode

from exporter.errors import ConfigError

MAX_BYTES = 256 << 10  # ~100x the example config; libyaml parses this much in well under 1 s
MAX_DEPTH = 32  # the config itself nests 4 deep (fields.features[i].path)
_LONG_INTEGER = 40  # digits: far beyond every bound, far below int()'s 4,300-digit limit

# libyaml when the wheel has it (~7x faster); the pure-Python parser otherwise.
_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class LongNumber(float):
    """An integer literal too long for any setting: ±inf (or its float value) for the bounds
    checks, and "a 5000-digit number" in their messages."""

    digits: int

    def __new__(cls, value: float, digits: int) -> LongNumber:
        number = super().__new__(cls, value)
        number.digits = digits
        return number

    def __repr__(self) -> str:
        return f"a {self.digits}-digit number"

    __str__ = __repr__


class SpelledInt(int):
    """A YAML integer written otherwise than its decimal value: ``010`` (8 to YAML 1.1),
    ``0x1F`` (31), ``1_000``, ``1:30`` (90). A number setting takes the value; a static model
    name or version would be a label the model never had, so it is refused with ``text``."""

    text: str

    def __new__(cls, value: int, text: str) -> SpelledInt:
        number = super().__new__(cls, value)
        number.text = text
        return number


class SpelledFloat(float):
    """A YAML float written otherwise than its shortest form: ``1.10`` (1.1), so a message
    asking to quote a static version can show ``"1.10"``, the text meant."""

    text: str

    def __new__(cls, value: float, text: str) -> SpelledFloat:
        number = super().__new__(cls, value)
        number.text = text
        return number


class _Loader(_Base):  # type: ignore[misc]
    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, ScalarNode):
                key = (key_node.tag, key_node.value)
                if key in seen:
                    raise ConstructorError(
                        None, None, f"key {key_node.value!r} is given twice", key_node.start_mark
                    )
                seen.add(key)
        mapping: dict[Any, Any] = super().construct_mapping(node, deep)
        return mapping

    def construct_yaml_int(self, node: ScalarNode) -> int | float:
        text = str(node.value).replace("_", "")
        digits = text.lstrip("+-")
        if digits.isdigit() and len(digits) > _LONG_INTEGER:
            return LongNumber(float(text), len(digits))  # ±inf past ~308 digits
        value: int = super().construct_yaml_int(node)
        if value.bit_length() > 4 * _LONG_INTEGER:  # hex, octal, base 60: same reasoning
            return LongNumber(math.inf if value > 0 else -math.inf, len(digits))
        if str(value) != node.value:
            return SpelledInt(value, str(node.value))
        return value

    def construct_yaml_float(self, node: ScalarNode) -> float:
        value: float = super().construct_yaml_float(node)
        if math.isfinite(value) and repr(value) != node.value:
            return SpelledFloat(value, str(node.value))
        return value

    def construct_yaml_timestamp(self, node: ScalarNode) -> str:
        return str(node.value)  # no setting is a date; ``2024-02-30`` must not raise


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def read_text(path: str | Path, max_bytes: int = MAX_BYTES) -> str:
    """The file's text, or ConfigError: never blocks (O_NONBLOCK, regular files only)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError(
                [f"{path}: not a regular file (a directory, FIFO or device); give the file itself"]
            )
        data = b""
        while len(data) <= max_bytes:
            piece = os.read(fd, max_bytes + 1 - len(data))
            if not piece:
                break
            data += piece
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read ({exc.strerror})"]) from exc
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ConfigError([f"{path}: larger than {max_bytes >> 10} KiB; a config is much smaller"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})"]) from exc


def _check_events(text: str, where: str) -> None:
    """Refuse aliases and deep nesting from the event stream, before anything is built."""
    loader = _Loader(text)
    depth = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            line = event.start_mark.line + 1 if event.start_mark is not None else "?"
            if isinstance(event, AliasEvent):
                raise ConfigError(
                    [
                        f"{where}: line {line}: YAML aliases (*{event.anchor}) are not "
                        "supported in a config; write the value out"
                    ]
                )
            if isinstance(event, MappingStartEvent | SequenceStartEvent):
                depth += 1
                if depth > MAX_DEPTH:
                    raise ConfigError(
                        [f"{where}: line {line}: nested more than {MAX_DEPTH} levels deep"]
                    )
            elif isinstance(event, MappingEndEvent | SequenceEndEvent):
                depth -= 1
    finally:
        loader.dispose()


def parse_yaml(text: str, where: str = "config") -> Any:
    """YAML text → plain data (dicts, lists, str, int, float, bool, None), or ConfigError."""
    try:
        _check_events(text, where)
        return yaml.load(text, Loader=_Loader)  # a SafeLoader (or CSafeLoader) subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = " ".join(filter(None, (exc.context, exc.problem)))
        raise ConfigError([f"{where}: not valid YAML ({line}{problem})"]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([f"{where}: not valid YAML ({exc})"]) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        # Explicit tags on the wrong text (``!!float abc``, ``!!int x``) raise from the
        # constructors themselves.
        raise ConfigError([f"{where}: not valid YAML ({exc})"]) from exc


def read_yaml(path: str | Path) -> Any:
    return parse_yaml(read_text(path), str(path))
