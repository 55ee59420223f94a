"""The ``spec`` section of ink! metadata, read into frozen dataclasses for every version.

Owns: telling the metadata versions apart and the field names of each —

* ``metadataVersion: "0.1.0"`` (ink! 3.0-rc): top-level ``spec``/``storage``/``types``,
  labels as ``"name": ["new"]`` arrays (events and args: plain ``"name"``), 1-based type ids;
* ``{"V1" | "V2" | "V3": {spec, storage, types}}`` (ink! 3.x; ``V1`` still uses ``name``);
* ``"version": "4"`` (ink! 4) and ``"version": 5`` (ink! 5: events carry ``module_path`` and
  ``signature_topic``).

Must not: encode or decode values, or do any I/O.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import MetadataError
from .selectors import HASH_LEN, SELECTOR_LEN

_WRAPPED_VERSIONS = ("V3", "V2", "V1")
SUPPORTED = "metadataVersion 0.1.0, V1–V3 (ink! 3), version 4, version 5"


@dataclass(frozen=True)
class ArgSpec:
    label: str
    type_id: int
    display_name: str


@dataclass(frozen=True)
class EventArgSpec:
    label: str
    type_id: int
    display_name: str
    indexed: bool


@dataclass(frozen=True)
class MessageSpec:
    label: str
    selector: bytes
    args: tuple[ArgSpec, ...]
    mutates: bool
    payable: bool
    return_type: int | None
    docs: str
    is_constructor: bool
    default: bool
    return_display: str = ""

    @property
    def kind(self) -> str:
        return "constructor" if self.is_constructor else "message"


@dataclass(frozen=True)
class EventSpec:
    label: str
    args: tuple[EventArgSpec, ...]
    signature_topic: bytes | None
    module_path: str | None = None
    docs: str = ""


@dataclass(frozen=True)
class DecodedEvent:
    label: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ParsedSpec:
    ink_version: int
    name: str
    constructors: tuple[MessageSpec, ...]
    messages: tuple[MessageSpec, ...]
    events: tuple[EventSpec, ...]
    types: Any  # the raw ``types`` list, for TypeRegistry
    storage: Mapping[str, Any]
    source: Mapping[str, Any]


def parse_spec(data: Any) -> ParsedSpec:
    """Detect the metadata version of a decoded JSON document and read its spec."""
    if not isinstance(data, Mapping):
        raise MetadataError(f"metadata must be a JSON object, got {type(data).__name__}")
    if "metadataVersion" in data:
        ink_version, body = 3, data
    elif wrapped := next((k for k in _WRAPPED_VERSIONS if isinstance(data.get(k), Mapping)), None):
        ink_version, body = 3, data[wrapped]
    elif "version" in data:
        version = str(data["version"]).strip()
        if version not in ("4", "5"):
            raise MetadataError(
                f"unsupported ink! metadata version {data['version']!r} (supported: {SUPPORTED})"
            )
        ink_version, body = int(version), data
    else:
        raise MetadataError(
            "unknown metadata format: no 'version', 'metadataVersion' or 'V3' key "
            f"(supported: {SUPPORTED})"
        )
    for key in ("spec", "types"):
        if key not in body:
            raise MetadataError(f"ink! {ink_version} metadata has no '{key}' section")
    spec = body["spec"]
    try:
        constructors = tuple(_message(c, True) for c in spec.get("constructors") or ())
        messages = tuple(_message(m, False) for m in spec.get("messages") or ())
        events = tuple(_event(e) for e in spec.get("events") or ())
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MetadataError(f"malformed 'spec' section: {exc!r}") from exc
    contract = data.get("contract")
    name = contract.get("name") if isinstance(contract, Mapping) else None
    source = data.get("source")
    return ParsedSpec(
        ink_version=ink_version,
        name=str(name or "unnamed"),
        constructors=constructors,
        messages=messages,
        events=events,
        types=body["types"],
        storage=body.get("storage") or {},
        source=source if isinstance(source, Mapping) else {},
    )


def _label(entry: Mapping[str, Any]) -> str:
    raw = entry["label"] if "label" in entry else entry["name"]
    return "::".join(raw) if isinstance(raw, list) else str(raw)


def _docs(entry: Mapping[str, Any]) -> str:
    return textwrap.dedent("\n".join(entry.get("docs") or ())).strip()


def _type_ref(ref: Any) -> tuple[int, str]:
    display = ref.get("displayName") or ()
    return int(ref["type"]), "::".join(display)


def _message(entry: Mapping[str, Any], is_constructor: bool) -> MessageSpec:
    label = _label(entry)
    selector = hex_bytes(entry["selector"], f"selector of {label!r}", SELECTOR_LEN)
    args = tuple(ArgSpec(_label(a), *_type_ref(a["type"])) for a in entry.get("args") or ())
    ret = entry.get("returnType")
    return_type: int | None = None
    return_display = ""
    # a unit return is ``null`` in ink! 3; some generators write ``{}`` or ``{"type": null}``
    if ret and ret.get("type") is not None:
        return_type, return_display = _type_ref(ret)
    return MessageSpec(
        label=label,
        selector=selector,
        args=args,
        mutates=bool(entry.get("mutates", False)),
        # before V3, constructors carried no flag and always accepted value
        payable=bool(entry.get("payable", is_constructor)),
        return_type=return_type,
        docs=_docs(entry),
        is_constructor=is_constructor,
        default=bool(entry.get("default", False)),
        return_display=return_display,
    )


def _event(entry: Mapping[str, Any]) -> EventSpec:
    label = _label(entry)
    args = tuple(
        EventArgSpec(_label(a), *_type_ref(a["type"]), indexed=bool(a.get("indexed", False)))
        for a in entry.get("args") or ()
    )
    topic = entry.get("signature_topic")
    return EventSpec(
        label=label,
        args=args,
        signature_topic=hex_bytes(topic, f"signature_topic of {label!r}", HASH_LEN)
        if topic
        else None,
        module_path=entry.get("module_path"),
        docs=_docs(entry),
    )


def hex_bytes(text: Any, what: str, length: int | None = None) -> bytes:
    """Parse a ``0x…`` string from metadata; ``MetadataError`` naming ``what`` otherwise."""
    if not isinstance(text, str) or not text.startswith("0x"):
        raise MetadataError(f"{what} must be a 0x-prefixed hex string, got {text!r}")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise MetadataError(f"{what} is not valid hex: {text[:20]!r}...") from None
    if length is not None and len(raw) != length:
        raise MetadataError(f"{what} must be {length} bytes, got {len(raw)}")
    return raw
