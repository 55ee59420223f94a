"""The scale-info portable type registry of an ink! metadata file, normalised.

Owns: reading the ``types`` section in both shapes seen in ink! metadata — the scale-info 0.x
list of ``{def, path?, params: [id]}`` entries with 1-based ids (``metadataVersion "0.1.0"``)
and the scale-info ≥ 1 list of ``{id, type: {def, path, params: [{name, type}]}}`` entries
(ink! 3 ``V1``–``V3``, 4 and 5) — into immutable :class:`TypeInfo` records, plus the readable
names used in error messages (``Option<AccountId>``, ``[u8; 32]``).
Must not: encode or decode values (that is :mod:`.scale_args`), or do any I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MetadataError

PRIMITIVES = frozenset(
    {"bool", "char", "str", "u8", "u16", "u32", "u64", "u128", "u256"}
    | {"i8", "i16", "i32", "i64", "i128", "i256"}
)
#: Type paths whose last segment marks a 32-byte account id (ink! 3: ``ink_env::types``,
#: ink! 4/5: ``ink_primitives::types``; pink/sp-core style: ``AccountId32``).
ACCOUNT_ID_NAMES = frozenset({"AccountId", "AccountId32"})
ACCOUNT_ID_LEN = 32
#: Generic parameters are spelled out in names only this deep (recursive types stay finite).
NAME_DEPTH = 4


@dataclass(frozen=True)
class Field:
    name: str | None
    type_id: int
    type_name: str | None


@dataclass(frozen=True)
class Variant:
    name: str
    index: int
    fields: tuple[Field, ...]


@dataclass(frozen=True)
class TypeInfo:
    """One registry entry. ``kind`` is the scale-info ``def`` key, lower-cased."""

    id: int
    kind: str  # composite | variant | sequence | array | tuple | primitive | compact | bitsequence
    path: tuple[str, ...] = ()
    params: tuple[int | None, ...] = ()
    primitive: str = ""
    fields: tuple[Field, ...] = ()
    variants: tuple[Variant, ...] = ()
    inner: int = -1  # element type of sequence / array / compact
    length: int = 0  # array length
    items: tuple[int, ...] = ()  # tuple members


class TypeRegistry:
    """Type id → :class:`TypeInfo` for one contract. Immutable after construction."""

    def __init__(self, raw_types: Any) -> None:
        if not isinstance(raw_types, list):
            raise MetadataError("metadata 'types' must be a list")
        self._types: dict[int, TypeInfo] = {}
        for position, entry in enumerate(raw_types):
            info = _parse_entry(position, entry)
            self._types[info.id] = info
        for info in self._types.values():
            for ref in _references(info):
                if ref not in self._types:
                    raise MetadataError(f"type {info.id} refers to type {ref}, which is missing")
        self._names: dict[int, str] = {}

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    def __len__(self) -> int:
        return len(self._types)

    def get(self, type_id: int) -> TypeInfo:
        try:
            return self._types[type_id]
        except KeyError:
            raise MetadataError(f"type {type_id} is not in the metadata's type registry") from None

    # --- classification (what the codec treats specially) -----------------------------------

    def is_u8(self, type_id: int) -> bool:
        info = self._types[type_id]
        return info.kind == "primitive" and info.primitive == "u8"

    def is_account_id(self, info: TypeInfo) -> bool:
        if not info.path or info.path[-1] not in ACCOUNT_ID_NAMES:
            return False
        if info.kind == "composite" and len(info.fields) == 1:
            info = self._types[info.fields[0].type_id]
        return info.kind == "array" and info.length == ACCOUNT_ID_LEN and self.is_u8(info.inner)

    @staticmethod
    def is_option(info: TypeInfo) -> bool:
        names = {v.name for v in info.variants}
        return info.kind == "variant" and info.path == ("Option",) and names == {"None", "Some"}

    # --- names for messages --------------------------------------------------------------------

    def name(self, type_id: int, depth: int = 0) -> str:
        """A Rust-like name: ``u128``, ``Vec<u8>``, ``Option<AccountId>``, ``(u32, bool)``."""
        cached = self._names.get(type_id)
        if cached is not None:
            return cached
        info = self._types[type_id]
        if depth > NAME_DEPTH:
            return info.path[-1] if info.path else info.kind
        sub = depth + 1
        if info.kind == "primitive":
            text = "String" if info.primitive == "str" else info.primitive
        elif info.kind == "sequence":
            text = f"Vec<{self.name(info.inner, sub)}>"
        elif info.kind == "array":
            text = f"[{self.name(info.inner, sub)}; {info.length}]"
        elif info.kind == "compact":
            text = f"Compact<{self.name(info.inner, sub)}>"
        elif info.kind == "tuple":
            text = "(" + ", ".join(self.name(i, sub) for i in info.items) + ")"
        elif info.kind == "bitsequence":
            text = "BitVec"
        elif info.path:
            args = [self.name(p, sub) for p in info.params if p is not None]
            text = info.path[-1] + (f"<{', '.join(args)}>" if args else "")
        else:
            text = f"<anonymous {info.kind}>"
        if depth == 0:  # names of nested calls may be truncated, never cache those
            self._names[type_id] = text
        return text

    def describe(self, type_id: int, display: str | None = None) -> str:
        """``name (display, path)`` — e.g. ``u128 (Balance)``, ``AccountId (ink_env::types::…)``."""
        name = self.name(type_id)
        extra: list[str] = []
        # one-letter type names are generic parameters ("T", "E"): they say nothing
        if display and len(display) > 1 and not name.startswith(display):
            extra.append(display)
        path = "::".join(self._types[type_id].path)
        if "::" in path and path not in extra:
            extra.append(path)
        return f"{name} ({', '.join(extra)})" if extra else name


# --- parsing ----------------------------------------------------------------------------------


def _parse_entry(position: int, entry: Any) -> TypeInfo:
    if not isinstance(entry, Mapping):
        raise MetadataError(f"types[{position}] is not an object")
    legacy = "def" in entry  # scale-info 0.x (ink! 3.0-rc): no ids, list index + 1 is the id
    type_id = position + 1 if legacy else entry.get("id")
    body = entry if legacy else entry.get("type")
    if not isinstance(type_id, int) or not isinstance(body, Mapping):
        raise MetadataError(f"types[{position}] needs an integer 'id' and a 'type' object")
    try:
        return _parse_type(type_id, body, legacy)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MetadataError(f"type {type_id} is malformed: {exc!r}") from exc


def _parse_type(type_id: int, body: Mapping[str, Any], legacy: bool) -> TypeInfo:
    definition = body["def"]
    if not isinstance(definition, Mapping) or len(definition) != 1:
        raise ValueError(f"'def' must have exactly one key, got {definition!r}")
    ((key, value),) = definition.items()
    kind = key.lower()
    path = tuple(str(p) for p in body.get("path") or ())
    params = tuple(_param(p, legacy) for p in body.get("params") or ())
    common: dict[str, Any] = {"id": type_id, "path": path, "params": params}
    if kind == "primitive":
        if value not in PRIMITIVES:
            raise ValueError(f"unknown primitive {value!r}")
        return TypeInfo(kind=kind, primitive=value, **common)
    if kind == "composite":
        return TypeInfo(kind=kind, fields=_fields((value or {}).get("fields")), **common)
    if kind == "variant":
        raw = (value or {}).get("variants") or ()
        variants = tuple(
            Variant(
                name=str(v["name"]),
                # scale-info ≥ 1: "index"; 0.x: "discriminant" for C-like enums, else position
                index=int(v.get("index", v.get("discriminant", i))),
                fields=_fields(v.get("fields")),
            )
            for i, v in enumerate(raw)
        )
        return TypeInfo(kind=kind, variants=variants, **common)
    if kind in ("sequence", "compact"):
        return TypeInfo(kind=kind, inner=int(value["type"]), **common)
    if kind == "array":
        return TypeInfo(kind=kind, inner=int(value["type"]), length=int(value["len"]), **common)
    if kind == "tuple":
        return TypeInfo(kind=kind, items=tuple(int(t) for t in value or ()), **common)
    if kind == "phantom":  # scale-info 0.x only; encodes to nothing
        return TypeInfo(kind="tuple", **common)
    if kind == "bitsequence":
        return TypeInfo(kind=kind, **common)
    raise ValueError(f"unknown type definition {key!r}")


def _param(raw: Any, legacy: bool) -> int | None:
    if legacy or isinstance(raw, int):
        return int(raw)
    ref = raw.get("type") if isinstance(raw, Mapping) else None
    return int(ref) if ref is not None else None


def _fields(raw: Any) -> tuple[Field, ...]:
    return tuple(
        Field(name=f.get("name") or None, type_id=int(f["type"]), type_name=f.get("typeName"))
        for f in raw or ()
    )


def _references(info: TypeInfo) -> list[int]:
    refs = [f.type_id for f in info.fields]
    refs += [f.type_id for v in info.variants for f in v.fields]
    refs += list(info.items)
    if info.inner >= 0:
        refs.append(info.inner)
    return refs
