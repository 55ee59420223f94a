"""ink! v4 metadata from a small declarative description (`<contract>/contract.toml`).

Produces exactly the JSON that `cargo contract build` writes for an ink! 4.x contract:
`source`, `contract`, then the ABI (`spec`, `storage`, `types`, `version: "4"`) with its
object keys sorted (cargo-contract serialises the ABI through `serde_json::Value`, whose
maps are ordered). The type registry mimics scale-info's `Registry`: a type gets its id
when first met — storage layout first, then constructors (arguments, then return type),
messages, events, `lang_error`, environment — and a type's id is reserved before its type
parameters and then its fields are registered, depth first.

Owns: the type-expression parser, the registry, layout/spec/bundle assembly, ink!'s
selector and storage-key rules. Must not: run the toolchain (that is `build.py`).
"""

from __future__ import annotations

import hashlib
import json
import re
import struct
from dataclasses import dataclass, field
from typing import Any

#: Version string written as `source.language`: the ABI these contracts implement.
INK_LANGUAGE = "ink! 4.3.0"
#: ink! 4 `DefaultEnvironment::MAX_EVENT_TOPICS`.
MAX_EVENT_TOPICS = 4


# --- ink! rules ------------------------------------------------------------------------------


def blake2_256(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=32).digest()


def selector(label: str) -> bytes:
    """ink! 4 default selector: the first 4 bytes of blake2_256 of the label."""
    return blake2_256(label.encode())[:4]


def entry_selector(entry: dict[str, Any]) -> bytes:
    """Selector of a constructor/message entry of `contract.toml`.

    - `selector = "0x…"`: given explicitly (`#[ink(message, selector = 0x…)]`);
    - `namespace = "ns"`: a message of a trait declared `#[ink::trait_definition(namespace =
      "ns")]`; its label is `Trait::message` and ink! 4 hashes `ns::Trait::message`
      (`ink_ir` `Selector::compose`), e.g. pink's `System::get_driver` →
      blake2_256("pink_system::System::get_driver") = 0x2740cf0a;
    - otherwise the label itself, which for a trait without namespace is `Trait::message`.
    """
    if "selector" in entry:
        return bytes.fromhex(entry["selector"].removeprefix("0x"))
    if "namespace" in entry:
        return selector(f"{entry['namespace']}::{entry['label']}")
    return selector(entry["label"])


_P1, _P2, _P3, _P4, _P5 = 2654435761, 2246822519, 3266489917, 668265263, 374761393
_M32 = 0xFFFFFFFF


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (32 - r))) & _M32


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32, as `xxhash_rust::const_xxh32` (used by ink! 4 for storage keys)."""
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + _P1 + _P2) & _M32, (seed + _P2) & _M32, seed & _M32, (seed - _P1) & _M32]
        while i + 16 <= n:
            for j in range(4):
                lane = struct.unpack_from("<I", data, i + 4 * j)[0]
                v[j] = (_rotl((v[j] + lane * _P2) & _M32, 13) * _P1) & _M32
            i += 16
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & _M32
    else:
        h = (seed + _P5) & _M32
    h = (h + n) & _M32
    while i + 4 <= n:
        h = (_rotl((h + struct.unpack_from("<I", data, i)[0] * _P3) & _M32, 17) * _P4) & _M32
        i += 4
    while i < n:
        h = (_rotl((h + data[i] * _P5) & _M32, 11) * _P1) & _M32
        i += 1
    h ^= h >> 15
    h = (h * _P2) & _M32
    h ^= h >> 13
    h = (h * _P3) & _M32
    h ^= h >> 16
    return h


def storage_root_key(struct_name: str, field_name: str) -> bytes:
    """Root key of an `AutoKey` `Mapping` field, as stored (and shown in metadata).

    ink! 4 hashes `"<Struct>::<field>"` with xxh32; the key bytes are the hash's big-endian
    bytes (checked against ink!'s erc20: `Erc20::balances` → `0x2623dce7`).
    """
    return struct.pack(">I", xxh32(f"{struct_name}::{field_name}".encode()))


# --- type expressions ------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*([A-Za-z_][A-Za-z0-9_]*|\d+|[<>,;()\[\]])")


@dataclass(frozen=True)
class TypeExpr:
    """A parsed Rust-like type: `head` with generic `args` (`Vec<u8>`, `(A, B)`, `[u8; 32]`)."""

    head: str  # a name, "()" for tuples, "[]" for arrays
    args: tuple[TypeExpr, ...] = ()
    length: int = 0  # arrays only

    @property
    def display_name(self) -> list[str]:
        """ink!'s `displayName`: the path as written, without generics (none for arrays)."""
        return [] if self.head in ("[]", "()") else [self.head]


def parse_type(text: str) -> TypeExpr:
    tokens = _TOKEN.findall(text)
    if "".join(tokens) != re.sub(r"\s+", "", text):
        raise ValueError(f"cannot parse type {text!r}")
    pos = 0

    def peek() -> str | None:
        return tokens[pos] if pos < len(tokens) else None

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = peek()
        if tok is None or (expected is not None and tok != expected):
            raise ValueError(f"type {text!r}: expected {expected!r}, got {tok!r}")
        pos += 1
        return tok

    def parse() -> TypeExpr:
        tok = take()
        if tok == "(":
            items: list[TypeExpr] = []
            while peek() != ")":
                items.append(parse())
                if peek() == ",":
                    take(",")
            take(")")
            return TypeExpr("()", tuple(items))
        if tok == "[":
            item = parse()
            take(";")
            length = int(take())
            take("]")
            return TypeExpr("[]", (item,), length)
        args: list[TypeExpr] = []
        if peek() == "<":
            take("<")
            args.append(parse())
            while peek() == ",":
                take(",")
                args.append(parse())
            take(">")
        return TypeExpr(tok, tuple(args))

    result = parse()
    if pos != len(tokens):
        raise ValueError(f"trailing input in type {text!r}")
    return result


# --- the registry ----------------------------------------------------------------------------

_PRIMITIVES = {
    "bool",
    "char",
    "str",
    "u8",
    "u16",
    "u32",
    "u64",
    "u128",
    "i8",
    "i16",
    "i32",
    "i64",
    "i128",
}
#: Environment aliases of the default ink!/pink environment.
_ALIASES = {"Balance": "u128", "Timestamp": "u64", "BlockNumber": "u32", "String": "str"}
#: Chain extensions an environment can name (`[environment] chain_extension = …`): ink!'s
#: default, and pink's as `pink-extension` 0.4 contracts (Phala's system contract) show it.
_CHAIN_EXTENSIONS = {
    "NoChainExtension": ("ink_env", "types", "NoChainExtension"),
    "PinkExt": ("pink_extension", "chain_extension", "PinkExt"),
}
#: Composite wrappers around `[u8; 32]` defined by ink_primitives.
_BYTE32_STRUCTS = {
    "AccountId": ["ink_primitives", "types", "AccountId"],
    "Hash": ["ink_primitives", "types", "Hash"],
}


@dataclass
class Registry:
    """A scale-info style portable registry, filled in registration order."""

    enums: dict[str, dict[str, Any]] = field(default_factory=dict)  # user-declared types
    #: `[aliases]` of contract.toml: Rust type aliases (`VersionTuple = "(u16, u16, u16)"`);
    #: they register as their target and keep their own name as `displayName`.
    aliases: dict[str, str] = field(default_factory=dict)
    _ids: dict[Any, int] = field(default_factory=dict)
    _types: list[dict[str, Any] | None] = field(default_factory=list)

    def register(self, ty: TypeExpr | str) -> int:
        expr = parse_type(ty) if isinstance(ty, str) else ty
        key = self._canonical(expr)
        if key in self._ids:
            return self._ids[key]
        type_id = len(self._types)
        self._ids[key] = type_id
        self._types.append(None)  # reserved: nested types get later ids
        self._types[type_id] = self._build(expr)
        return type_id

    def portable(self) -> list[dict[str, Any]]:
        return [{"id": i, "type": t} for i, t in enumerate(self._types)]

    def _canonical(self, expr: TypeExpr) -> Any:
        if expr.head in self.aliases:
            return self._canonical(parse_type(self.aliases[expr.head]))
        head = _ALIASES.get(expr.head, expr.head)
        return (head, expr.length, tuple(self._canonical(a) for a in expr.args))

    def _build(self, expr: TypeExpr) -> dict[str, Any]:
        if expr.head in self.aliases:
            return self._build(parse_type(self.aliases[expr.head]))
        head = _ALIASES.get(expr.head, expr.head)
        args = expr.args
        if head in _PRIMITIVES:
            return {"def": {"primitive": head}}
        if head == "()":
            return {"def": {"tuple": [self.register(a) for a in args]}}
        if head == "[]":
            return {"def": {"array": {"len": expr.length, "type": self.register(args[0])}}}
        if head == "Vec":
            return {"def": {"sequence": {"type": self.register(args[0])}}}
        if head in _BYTE32_STRUCTS:
            inner = self.register("[u8; 32]")
            fields = [{"type": inner, "typeName": "[u8; 32]"}]
            return {"def": {"composite": {"fields": fields}}, "path": _BYTE32_STRUCTS[head]}
        if head == "Option":
            params = self._params(["T"], args)
            variants = [
                {"index": 0, "name": "None"},
                {"fields": [{"type": params[0]["type"]}], "index": 1, "name": "Some"},
            ]
            return {
                "def": {"variant": {"variants": variants}},
                "params": params,
                "path": ["Option"],
            }
        if head == "Result":
            params = self._params(["T", "E"], args)
            variants = [
                {"fields": [{"type": params[0]["type"]}], "index": 0, "name": "Ok"},
                {"fields": [{"type": params[1]["type"]}], "index": 1, "name": "Err"},
            ]
            return {
                "def": {"variant": {"variants": variants}},
                "params": params,
                "path": ["Result"],
            }
        if head == "LangError":
            variants = [{"index": 1, "name": "CouldNotReadInput"}]
            return {
                "def": {"variant": {"variants": variants}},
                "path": ["ink_primitives", "LangError"],
            }
        if head in _CHAIN_EXTENSIONS:
            return {"def": {"variant": {}}, "path": list(_CHAIN_EXTENSIONS[head])}
        if head in self.enums:
            decl = self.enums[head]
            if "fields" in decl:
                # A struct with named fields (scale-info: name, type, typeName as written).
                fields = [
                    {"name": f["name"], "type": self.register(f["type"]), "typeName": f["type"]}
                    for f in decl["fields"]
                ]
                return {"def": {"composite": {"fields": fields}}, "path": list(decl["path"])}
            variants = [self._variant(i, v) for i, v in enumerate(decl["variants"])]
            return {"def": {"variant": {"variants": variants}}, "path": list(decl["path"])}
        raise ValueError(f"unknown type {head!r}")

    def _variant(self, index: int, decl: str | dict[str, Any]) -> dict[str, Any]:
        """A fieldless variant is written as its name; one with (unnamed) fields as
        `{ name = "HttpStatus", fields = ["u16"] }`."""
        if isinstance(decl, str):
            return {"index": index, "name": decl}
        fields = [{"type": self.register(t), "typeName": t} for t in decl["fields"]]
        return {"fields": fields, "index": index, "name": decl["name"]}

    def _params(self, names: list[str], args: tuple[TypeExpr, ...]) -> list[dict[str, Any]]:
        if len(names) != len(args):
            raise ValueError(f"expected {len(names)} type arguments, got {len(args)}")
        return [{"name": n, "type": self.register(a)} for n, a in zip(names, args, strict=True)]


# --- spec assembly ---------------------------------------------------------------------------


def _docs(lines: list[str]) -> list[str]:
    # rustdoc keeps the space after `///`; ink! copies the lines verbatim.
    return [f" {line}" if line else "" for line in lines]


def _type_spec(reg: Registry, ty: str) -> dict[str, Any]:
    return {"displayName": parse_type(ty).display_name, "type": reg.register(ty)}


def _args(reg: Registry, args: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"label": a["label"], "type": _type_spec(reg, a["type"])} for a in args]


def _layout(reg: Registry, storage: dict[str, Any]) -> dict[str, Any]:
    name = storage["struct"]
    root_key = "0x00000000"
    fields = []
    for f in storage["fields"]:
        if "mapping" in f:
            # Only the value type is recorded (ink! 4 `Mapping` StorageLayout).
            key = "0x" + storage_root_key(name, f["name"]).hex()
            leaf = {"leaf": {"key": key, "ty": reg.register(f["mapping"][1])}}
            layout: dict[str, Any] = {"root": {"layout": leaf, "root_key": key}}
        else:
            layout = {"leaf": {"key": root_key, "ty": reg.register(f["type"])}}
        fields.append({"layout": layout, "name": f["name"]})
    return {"root": {"layout": {"struct": {"fields": fields, "name": name}}, "root_key": root_key}}


def build_abi(desc: dict[str, Any]) -> dict[str, Any]:
    """`spec`, `storage`, `types` and `version` of the ink! v4 metadata for `desc`."""
    reg = Registry(enums=desc.get("types", {}), aliases=desc.get("aliases", {}))
    storage = _layout(reg, desc["storage"])

    constructors = []
    for c in desc["constructors"]:
        args = _args(reg, c.get("args", []))
        ret = f"Result<{c.get('returns', '()')}, LangError>"
        constructors.append(
            {
                "args": args,
                "default": c.get("default", False),
                "docs": _docs(c.get("docs", [])),
                "label": c["label"],
                "payable": c.get("payable", False),
                "returnType": {
                    "displayName": ["ink_primitives", "ConstructorResult"],
                    "type": reg.register(ret),
                },
                "selector": "0x" + entry_selector(c).hex(),
            }
        )

    messages = []
    for m in desc["messages"]:
        args = _args(reg, m.get("args", []))
        ret = f"Result<{m.get('returns', '()')}, LangError>"
        messages.append(
            {
                "args": args,
                "default": m.get("default", False),
                "docs": _docs(m.get("docs", [])),
                "label": m["label"],
                "mutates": m.get("mutates", False),
                "payable": m.get("payable", False),
                "returnType": {"displayName": ["ink", "MessageResult"], "type": reg.register(ret)},
                "selector": "0x" + entry_selector(m).hex(),
            }
        )

    events = []
    for e in desc.get("events", []):
        indexed = sum(1 for a in e["args"] if a.get("indexed", False))
        if indexed + 1 > MAX_EVENT_TOPICS:
            raise ValueError(f"event {e['label']}: more than {MAX_EVENT_TOPICS} topics")
        args = [
            {
                "docs": _docs(a.get("docs", [])),
                "indexed": a.get("indexed", False),
                "label": a["label"],
                "type": _type_spec(reg, a["type"]),
            }
            for a in e["args"]
        ]
        events.append({"args": args, "docs": _docs(e.get("docs", [])), "label": e["label"]})

    lang_error = {"displayName": ["ink", "LangError"], "type": reg.register("LangError")}
    environment = {
        "accountId": _type_spec(reg, "AccountId"),
        "balance": _type_spec(reg, "Balance"),
        "hash": _type_spec(reg, "Hash"),
        "timestamp": _type_spec(reg, "Timestamp"),
        "blockNumber": _type_spec(reg, "BlockNumber"),
        "chainExtension": {
            "displayName": ["ChainExtension"],
            "type": reg.register(
                desc.get("environment", {}).get("chain_extension", "NoChainExtension")
            ),
        },
        "maxEventTopics": MAX_EVENT_TOPICS,
    }
    spec = {
        "constructors": constructors,
        "docs": _docs(desc["contract"].get("docs", [])),
        "environment": environment,
        "events": events,
        "lang_error": lang_error,
        "messages": messages,
    }
    abi: dict[str, Any] = _sorted(
        {"spec": spec, "storage": storage, "types": reg.portable(), "version": "4"}
    )
    return abi


def _sorted(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def build_metadata(
    desc: dict[str, Any],
    wasm: bytes,
    compiler: str,
    build_info: dict[str, Any],
    *,
    with_wasm: bool,
) -> dict[str, Any]:
    """The `.json` (without code) or `.contract` (with `source.wasm`) document."""
    source: dict[str, Any] = {
        "hash": "0x" + blake2_256(wasm).hex(),
        "language": INK_LANGUAGE,
        "compiler": compiler,
    }
    if with_wasm:
        source["wasm"] = "0x" + wasm.hex()
    source["build_info"] = _sorted(build_info)
    info = desc["contract"]
    contract: dict[str, Any] = {
        "name": info["name"],
        "version": info["version"],
        "authors": list(info["authors"]),
    }
    if "description" in info:
        contract["description"] = info["description"]
    return {"source": source, "contract": contract, **build_abi(desc)}


def dump(document: dict[str, Any]) -> bytes:
    """cargo-contract's formatting: `serde_json::to_string_pretty` (2-space indent)."""
    return (json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode()
