"""Typed msgspec record types built from the field mapping, and columns pulled out of them.

Why this shape: after msgspec has decoded a piece of a log into Structs, the cost is moving
values out of one Python object per record. Reading a column with ``attrgetter`` costs one
call per record *per field*; ``msgspec.structs.astuple`` copies all of a Struct's fields in
one C call, and ``np.fromiter`` lays the tuples out as an object matrix whose columns are the
fields. A numeric field is declared ``float | None`` with a NaN default (a missing key), so
its column converts to float64 in one numpy call unless a JSON ``null`` put a None in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import chain
from typing import Any

import msgspec
import numpy as np
import numpy.typing as npt
from msgspec.structs import astuple

from exporter.config_types import FieldsConfig
from exporter.errors import ConfigError

Path = tuple[str, ...]
ObjectArray = npt.NDArray[np.object_]

NUMBER = float | None  # a numeric field: NaN where the key is absent, None for null
CATEGORY = str | int | bool | None
TIMESTAMP = float | str | None
NAME = str | int | None
LABEL = str | int | float | bool | None
ANY_SCALAR = str | int | float | bool | None  # a path mapped to roles of different types


@dataclass
class _Node:
    """One Struct type: which of its fields are mapped leaves and which are nested Structs."""

    width: int = 0
    leaves: list[tuple[int, Path]] = field(default_factory=list)
    children: list[tuple[int, _Node]] = field(default_factory=list)


class RecordType:
    """The Struct type for one field mapping, and how to read its columns back."""

    def __init__(self, fields: FieldsConfig, with_request_id: bool) -> None:
        """``with_request_id``: decode the request id only when something reads it (the
        label join); otherwise msgspec skips it without making a string."""
        leaves: dict[Path, Any] = {}
        mixed: set[Path] = set()

        def want(path: Path | None, typ: Any) -> None:
            if path is None:
                return
            if path in leaves and leaves[path] != typ:
                typ = ANY_SCALAR
                mixed.add(path)
            leaves[path] = typ

        for spec in fields.numeric:
            want(spec.path, NUMBER)
        for spec in fields.categorical:
            want(spec.path, CATEGORY)
        want(fields.timestamp, TIMESTAMP)
        want(fields.model_path, NAME)
        want(fields.version_path, NAME)
        want(fields.ground_truth, LABEL)
        if with_request_id:
            want(fields.request_id, NAME)
        for path in leaves:
            for other in leaves:
                if other != path and other[: len(path)] == path:
                    joined = ".".join(path)
                    raise ConfigError(
                        [f"fields: {joined!r} is mapped as a value but also has mapped children"]
                    )
        self.leaves = leaves  # every mapped path and the type msgspec decodes it to
        self.mixed = mixed  # paths mapped to roles of two types (decoded as any scalar)
        self._counter = 0
        self._root_node = _Node()
        self.type = self._build((), leaves, self._root_node)

    def _build(self, prefix: Path, leaves: dict[Path, Any], node: _Node) -> type:
        children = sorted({p[len(prefix)] for p in leaves if p[: len(prefix)] == prefix})
        members: list[tuple[str, Any, Any]] = []
        for position, key in enumerate(children):
            attr = f"a{position}"
            child = (*prefix, key)
            if child in leaves:
                typ = leaves[child]
                default = math.nan if typ == NUMBER else None
                members.append((attr, typ, msgspec.field(default=default, name=key)))
                node.leaves.append((position, child))
            else:
                sub_node = _Node()
                sub = self._build(child, leaves, sub_node)
                members.append((attr, sub, msgspec.field(default_factory=sub, name=key)))
                node.children.append((position, sub_node))
        node.width = len(members)
        self._counter += 1
        return msgspec.defstruct(f"Record{self._counter}", members, gc=False)

    def columns(self, records: list[Any]) -> dict[Path, ObjectArray]:
        """Every mapped path → an object column over ``records`` (in order)."""
        out: dict[Path, ObjectArray] = {}
        _columns(self._root_node, records, len(records), out)
        return out


def _columns(node: _Node, records: Any, n: int, out: dict[Path, ObjectArray]) -> None:
    flat = np.fromiter(
        chain.from_iterable(map(astuple, records)), dtype=object, count=n * node.width
    )
    matrix = flat.reshape(n, node.width)
    for position, path in node.leaves:
        out[path] = matrix[:, position]
    for position, child in node.children:
        _columns(child, matrix[:, position], n, out)
