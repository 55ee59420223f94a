"""ink! contract metadata: load it, then encode calls and decode results and events by label.

Owns: :class:`ContractMetadata` — loading a ``.contract`` bundle, a metadata ``.json`` (plus a
sibling ``.wasm`` of the same name if there is one) or a ``.wasm`` (plus its sibling ``.json``);
checking ``source.hash`` against blake2_256 of the code (metadata from another build — as
cargo-contract leaves after a rebuild, and as Phala's own fixtures ship — loads with a
:class:`~phat_runtime.errors.SourceHashMismatch` warning naming both hashes: the code given is
what runs, the metadata only supplies labels and types; ``strict=True`` raises it instead);
``selector ‖ SCALE(args)`` for
constructors and messages; decoding return values, call data and events into plain values.
Must not: do I/O beyond reading the path it is given (and its same-stem sibling, through
:mod:`.bundle`; never the network), or hold state shared between contracts — every instance
has its own type registry, is not modified after construction, and can be used from several
threads without locking.

ink! 3.0-rc (``metadataVersion 0.1.0``), 3.x (``V1``–``V3``), 4 and 5 metadata are read (see
:mod:`.ink_spec`); types come from the metadata's own portable registry (:mod:`.portable`),
values are converted by :mod:`.scale_args` and :mod:`.scale_decode`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from ..errors import DecodeError, EncodeError, MetadataError, SourceHashMismatch, UnknownLabel
from .bundle import read_contract_files
from .ink_spec import (
    ArgSpec,
    DecodedEvent,
    EventArgSpec,
    EventSpec,
    MessageSpec,
    ParsedSpec,
    hex_bytes,
    parse_spec,
)
from .portable import TypeRegistry
from .scale_args import ValueProblem, encode_value, short_repr, to_bytes
from .scale_decode import DataProblem, decode_value
from .selectors import HASH_LEN, SELECTOR_LEN, blake2_256, selector_of

__all__ = [
    "ArgSpec",
    "ContractMetadata",
    "DecodedEvent",
    "EventArgSpec",
    "EventSpec",
    "MessageSpec",
    "selector_of",
]


class ContractMetadata:
    """One contract's metadata and, when known, its code.

    Build with :meth:`load` or :meth:`from_json`.
    """

    def __init__(self, parsed: ParsedSpec, wasm: bytes | None = None, *, strict: bool = False,
                 origin: str = "") -> None:
        """``strict``: raise :class:`SourceHashMismatch` when ``source.hash`` is not the code's
        hash; otherwise it is kept in :attr:`source_mismatch` (``load`` / ``from_json`` warn
        with it). ``origin`` names where the metadata came from, for messages."""
        self.name: str = parsed.name
        self.ink_version: int = parsed.ink_version
        self.registry = TypeRegistry(parsed.types)
        self.constructors: list[MessageSpec] = list(parsed.constructors)
        self.messages: list[MessageSpec] = list(parsed.messages)
        self.events: list[EventSpec] = list(parsed.events)
        #: the raw ``storage`` layout tree, as in the file
        self.storage_layout: Mapping[str, Any] = parsed.storage
        declared = parsed.source.get("hash")
        #: the code hash the metadata declares (``source.hash``), if any
        self.source_hash: bytes | None = (
            hex_bytes(declared, "source.hash", HASH_LEN) if declared else None
        )
        self.wasm: bytes | None = bytes(wasm) if wasm is not None else None
        self.code_hash: bytes | None = blake2_256(self.wasm) if self.wasm is not None else None
        #: Set when the metadata comes from another build than the code (see the module doc).
        self.source_mismatch: SourceHashMismatch | None = None
        if self.code_hash is not None and self.source_hash not in (None, self.code_hash):
            declared = self.source_hash or b""
            where = f" ({origin})" if origin else ""
            self.source_mismatch = SourceHashMismatch(
                f"code hash mismatch for contract '{self.name}'{where}: the metadata is from "
                f"another build — source.hash is 0x{declared.hex()} but blake2_256(wasm) is "
                f"0x{self.code_hash.hex()}. The code given is what runs (code hash "
                f"0x{self.code_hash.hex()}); the metadata only supplies labels and types"
                + (". Rebuild or re-export the metadata with the code to match them." if strict
                   else "; load with strict=True (CLI: --strict) to refuse this."),
                declared=declared, actual=self.code_hash,
            )
            if strict:
                raise self.source_mismatch
        self._constructors = {c.label: c for c in self.constructors}
        self._messages = {m.label: m for m in self.messages}
        self._check_type_refs()

    # --- construction ----------------------------------------------------------------------------

    @classmethod
    def load(cls, path: str | os.PathLike[str], *, strict: bool = False) -> ContractMetadata:
        """Read a ``.contract`` bundle, a metadata ``.json`` (plus a sibling ``.wasm`` if
        present) or a ``.wasm`` (plus its sibling ``.json``).

        Metadata whose ``source.hash`` is not the code's hash loads with a
        :class:`SourceHashMismatch` warning naming both; ``strict=True`` raises it instead."""
        data, wasm = read_contract_files(path)
        metadata = cls._build(data, wasm, strict, os.fspath(path))
        if metadata.source_mismatch is not None:
            warnings.warn(metadata.source_mismatch, stacklevel=2)
        return metadata

    @classmethod
    def from_json(cls, data: Mapping[str, Any], wasm: bytes | None = None, *,
                  strict: bool = False) -> ContractMetadata:
        """Build from decoded metadata JSON; the code is ``wasm`` or else ``source.wasm``.
        A ``source.hash`` from another build: as :meth:`load`."""
        metadata = cls._build(data, wasm, strict, "")
        if metadata.source_mismatch is not None:
            warnings.warn(metadata.source_mismatch, stacklevel=2)
        return metadata

    @classmethod
    def _build(cls, data: Mapping[str, Any], wasm: bytes | None, strict: bool, origin: str) -> ContractMetadata:
        parsed = parse_spec(data)
        if wasm is None and parsed.source.get("wasm"):
            wasm = hex_bytes(parsed.source["wasm"], "source.wasm")
        return cls(parsed, wasm, strict=strict, origin=origin)

    def __repr__(self) -> str:
        return (
            f"<ContractMetadata {self.name!r} ink! {self.ink_version}: "
            f"{len(self.constructors)} constructor(s), {len(self.messages)} message(s), "
            f"{len(self.events)} event(s)>"
        )

    # --- lookup ----------------------------------------------------------------------------------

    def constructor(self, label: str) -> MessageSpec:
        return self._lookup(self._constructors, label, "constructor")

    def message(self, label: str) -> MessageSpec:
        return self._lookup(self._messages, label, "message")

    def default_constructor(self) -> MessageSpec | None:
        """The constructor marked ``default``; else the only constructor; else ``None``."""
        marked = [c for c in self.constructors if c.default]
        if marked:
            return marked[0]
        return self.constructors[0] if len(self.constructors) == 1 else None

    def by_selector(self, selector: bytes) -> MessageSpec | None:
        """The message (or else constructor) with this selector, if any."""
        selector = bytes(selector[:SELECTOR_LEN])
        return next((s for s in self.messages + self.constructors if s.selector == selector), None)

    def _lookup(self, table: dict[str, MessageSpec], label: str, kind: str) -> MessageSpec:
        spec = table.get(label)
        if spec is None and isinstance(label, str) and label.startswith("0x"):
            spec = next((s for s in table.values() if "0x" + s.selector.hex() == label), None)
        if spec is None:
            available = ", ".join(table) or "none"
            raise UnknownLabel(
                f"contract '{self.name}' has no {kind} {label!r}; available: {available}"
            )
        return spec

    # --- encoding --------------------------------------------------------------------------------

    def encode_constructor(
        self, label: str, args: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> bytes:
        """``selector ‖ SCALE(args)`` — the input data of an instantiate."""
        return self.encode_call(self.constructor(label), args)

    def encode_message(
        self, label: str, args: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> bytes:
        """``selector ‖ SCALE(args)`` — the input data of a call."""
        return self.encode_call(self.message(label), args)

    def encode_call(
        self, spec: MessageSpec, args: Mapping[str, Any] | Sequence[Any] | None = None
    ) -> bytes:
        out = bytearray(spec.selector)
        for arg, value in zip(spec.args, self._bind(spec, args), strict=True):
            try:
                out += encode_value(self.registry, arg.type_id, value, arg.display_name)
            except ValueProblem as p:
                at = f" at {p.where}" if p.where else ""
                why = f" ({p.why})" if p.why else ""
                raise EncodeError(
                    f"argument '{arg.label}' of {spec.kind} '{spec.label}'{at}: expected "
                    f"{self.registry.describe(p.type_id, p.hint)}, got {short_repr(p.got)}{why}"
                ) from None
        return bytes(out)

    def _bind(self, spec: MessageSpec, args: Mapping[str, Any] | Sequence[Any] | None) -> list[Any]:
        """Arguments given by label or in order → values in declaration order."""
        labels = [a.label for a in spec.args]
        takes = ", ".join(labels) or "no arguments"
        if args is None:
            args = ()
        if isinstance(args, Mapping):
            extra = [k for k in args if k not in labels]
            if extra:
                raise EncodeError(
                    f"unexpected argument {extra[0]!r} for {spec.kind} '{spec.label}' "
                    f"(it takes: {takes})"
                )
            missing = next((a for a in spec.args if a.label not in args), None)
            if missing is not None:
                raise self._missing(spec, missing)
            return [args[label] for label in labels]
        if isinstance(args, str | bytes) or not isinstance(args, Sequence):
            raise EncodeError(
                f"arguments of {spec.kind} '{spec.label}' must be a dict by label or a list in "
                f"order, got {type(args).__name__}"
            )
        if len(args) < len(labels):
            raise self._missing(spec, spec.args[len(args)])
        if len(args) > len(labels):
            raise EncodeError(
                f"too many arguments for {spec.kind} '{spec.label}': got {len(args)}, "
                f"it takes {len(labels)} ({takes})"
            )
        return list(args)

    def _missing(self, spec: MessageSpec, arg: ArgSpec) -> EncodeError:
        expected = self.registry.describe(arg.type_id, arg.display_name)
        return EncodeError(
            f"missing argument '{arg.label}' of {spec.kind} '{spec.label}' (expected {expected})"
        )

    # --- decoding --------------------------------------------------------------------------------

    def decode_return(self, spec: MessageSpec, data: bytes) -> Any:
        """The return value; ink! 4/5 keep the ``{"Ok": …}`` MessageResult wrapper."""
        data = bytes(data)
        what = f"return value of {spec.kind} '{spec.label}'"
        if spec.return_type is None:
            if data:
                raise DecodeError(f"{what}: returns nothing, but got {len(data)} byte(s)")
            return None
        value, end = self._decode(spec.return_type, data, 0, what)
        self._check_end(data, end, what)
        return value

    def decode_args(self, spec: MessageSpec, data: bytes) -> dict[str, Any]:
        """Inverse of :meth:`encode_call`; ``data`` may start with the selector or not."""
        data = bytes(data)
        what = f"arguments of {spec.kind} '{spec.label}'"
        if data[:SELECTOR_LEN] != spec.selector:
            return self._decode_fields(spec.args, data, 0, what)
        try:
            return self._decode_fields(spec.args, data, SELECTOR_LEN, what)
        except DecodeError as with_selector:
            try:  # the arguments may merely happen to start with the selector's bytes
                return self._decode_fields(spec.args, data, 0, what)
            except DecodeError:
                raise with_selector from None

    def decode_event(self, data: bytes, topics: Sequence[bytes | str] = ()) -> DecodedEvent:
        """ink! 3/4: the first data byte indexes :attr:`events`; ink! 5: ``topics[0]`` is the
        event's signature topic (events without one, "anonymous", are tried by their data)."""
        data = bytes(data)
        if self.ink_version < 5:
            if not data:
                raise DecodeError(f"event of contract '{self.name}': data is empty")
            if data[0] >= len(self.events):
                raise DecodeError(
                    f"event index {data[0]} out of range: contract '{self.name}' declares "
                    f"{len(self.events)} event(s)"
                )
            event = self.events[data[0]]
            return DecodedEvent(event.label, self._decode_event(event, data, 1))
        first = to_bytes(topics[0]) if topics else None
        for event in self.events:
            if first is not None and event.signature_topic == first:
                return DecodedEvent(event.label, self._decode_event(event, data, 0))
        for event in self.events:
            if event.signature_topic is None:
                try:
                    return DecodedEvent(event.label, self._decode_event(event, data, 0))
                except DecodeError:
                    continue
        shown = f"0x{first.hex()}" if first is not None else "(no topics)"
        raise DecodeError(
            f"no event of contract '{self.name}' has signature topic {shown}, and no anonymous "
            f"event decodes the {len(data)} data byte(s)"
        )

    def _decode_event(self, event: EventSpec, data: bytes, start: int) -> dict[str, Any]:
        return self._decode_fields(event.args, data, start, f"event '{event.label}'")

    def _decode_fields(
        self, args: Sequence[ArgSpec | EventArgSpec], data: bytes, start: int, what: str
    ) -> dict[str, Any]:
        values: dict[str, Any] = {}
        pos = start
        for arg in args:
            values[arg.label], pos = self._decode(arg.type_id, data, pos, f"{what}, '{arg.label}'")
        self._check_end(data, pos, what)
        return values

    def _decode(self, type_id: int, data: bytes, pos: int, what: str) -> tuple[Any, int]:
        try:
            return decode_value(self.registry, type_id, data, pos)
        except DataProblem as p:
            at = f" at {p.where}" if p.where else ""
            kind = "truncated input" if p.truncated else "invalid data"
            raise DecodeError(
                f"{what}{at}: {kind} for {self.registry.name(type_id)}: {p}"
            ) from None

    @staticmethod
    def _check_end(data: bytes, end: int, what: str) -> None:
        if end != len(data):
            raise DecodeError(
                f"{what}: {len(data) - end} trailing byte(s) left after decoding "
                f"(used {end} of {len(data)})"
            )

    # --- validation ------------------------------------------------------------------------------

    def _check_type_refs(self) -> None:
        for spec in self.constructors + self.messages:
            refs = [(a.label, a.type_id) for a in spec.args]
            if spec.return_type is not None:
                refs.append(("return type", spec.return_type))
            self._check_refs(f"{spec.kind} '{spec.label}'", refs)
        for event in self.events:
            self._check_refs(f"event '{event.label}'", [(a.label, a.type_id) for a in event.args])

    def _check_refs(self, where: str, refs: list[tuple[str, int]]) -> None:
        for what, type_id in refs:
            if type_id not in self.registry:
                raise MetadataError(f"{where}: {what} refers to type {type_id}, which is missing")
