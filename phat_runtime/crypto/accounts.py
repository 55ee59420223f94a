"""Accounts at the edges: SS58 / hex parsing and well-known development accounts.

Development accounts (``//Alice`` …) are derived with substrate-interface's sr25519
implementation (hard junctions), the same keys polkadot-js and subkey give.
"""

from __future__ import annotations

from functools import lru_cache

from phat_runtime.types import AccountId, account_id

#: SS58 prefix used when we print addresses (generic Substrate).
SS58_FORMAT = 42
DEV_ACCOUNTS = ("alice", "bob", "charlie", "dave", "eve", "ferdie")


@lru_cache(maxsize=64)
def dev_keypair(name: str) -> object:
    """sr25519 keypair of a dev URI like ``//Alice`` (or just ``alice``)."""
    from substrateinterface import Keypair  # slow import; only dev tooling needs it

    uri = name if name.startswith("/") else f"//{name.capitalize()}"
    return Keypair.create_from_uri(uri, ss58_format=SS58_FORMAT)


def dev_account(name: str) -> AccountId:
    """Public key (AccountId) of a dev account: ``dev_account("alice")`` == ``//Alice``."""
    return account_id(dev_keypair(name).public_key)  # type: ignore[attr-defined]


def parse_account(value: str | bytes) -> AccountId:
    """An AccountId from 32 bytes, ``0x``-hex, an SS58 address, or a dev name (``//Alice``)."""
    if isinstance(value, bytes | bytearray):
        return account_id(bytes(value))
    text = value.strip()
    if text.startswith("0x"):
        try:
            return account_id(bytes.fromhex(text[2:]))
        except ValueError as exc:
            raise ValueError(f"not a 32-byte hex account id: {value!r}") from exc
    if text.startswith("//") or text.lower() in DEV_ACCOUNTS:
        return dev_account(text)
    from scalecodec.utils.ss58 import ss58_decode

    try:
        return account_id(bytes.fromhex(ss58_decode(text)))
    except Exception as exc:
        raise ValueError(f"not an SS58 address, 0x-hex account id or dev account: {value!r}") from exc


def to_ss58(account: bytes) -> str:
    from scalecodec.utils.ss58 import ss58_encode

    return str(ss58_encode(account, SS58_FORMAT))
