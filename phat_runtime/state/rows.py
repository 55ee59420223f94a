"""Sealing rows of the encrypted state: who owns a key, keyed hashes, AEAD of keys and values.

Owns :class:`StateKeys` — every key the store derives from the cluster secret — and the row
format. A row is ``(khash, owner, epoch, skey, value)``:

* ``khash`` = keyed BLAKE2b-256 of the plaintext key (key independent of the epoch, so a
  lookup finds a row whatever epoch sealed it);
* ``owner`` = keyed BLAKE2b-128 *owner tag* of the key's scope (``b"S" ‖ address`` for
  contract storage, the namespace byte otherwise), so a prefix scan finds one contract's rows;
* ``skey`` = the plaintext key under AES-256-GCM with the epoch's cluster-wide key-sealing
  key, associated data (epoch, khash): prefix scans decrypt it, it cannot move to another row;
* ``value`` = the value under AES-256-GCM with the per-(epoch, owner) value key
  ``symmetric_key(cluster secret, "phat/state/v1", epoch, owner)``, associated data (epoch,
  owner, plaintext key): it cannot be swapped with another row's value, replayed under another
  key or moved to another contract.

Sealed blobs are ``batch id (8 random bytes) ‖ nonce (12 random bytes) ‖ ciphertext ‖ tag
(16)``. Each commit (a block, a re-encryption batch, an import batch) picks one batch id and
seals under the sub-key ``BLAKE2b-256(key = base key, batch id)``: random 96-bit GCM nonces are
safe for ~2³² messages per key, and a busy contract could reach that under one epoch; per-batch
sub-keys bound it by one batch's writes instead. Any failure is a
:class:`~phat_runtime.errors.StateCorrupted` naming the contract (SS58 and hex) or the cluster
namespace and what failed. Must not: log or show any key; import anything above ``crypto/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phat_runtime.crypto.kdf import symmetric_key
from phat_runtime.errors import ConfigError, StateCorrupted

#: The runtime's contract-storage namespace (runtime/records.py): ``S ‖ address ‖ trie id ‖ key``.
STORAGE_NAMESPACE = b"S"
ADDRESS_LEN = 32
#: The value-key owner of every namespace that is not contract storage.
CLUSTER_OWNER = b"cluster"
BATCH_ID_LEN = 8
NONCE_LEN = 12
TAG_LEN = 16
KEY_HASH_LEN = 32
OWNER_TAG_LEN = 16
MAX_EPOCH = 2**32 - 1
#: Derived keys and ciphers kept per store; past that the cache restarts (re-deriving is µs).
_CIPHER_CACHE = 4096
_PURPOSE = b"phat/state/v1"
# Names for error messages only (the runtime owns the layout: runtime/records.py).
_NAMESPACES = {b"C": "code", b"c": "code info", b"K": "contract registry", b"B": "balances",
               b"N": "instantiation nonce", b"S": "contract storage"}

Row = tuple[bytes, bytes, int, bytes, bytes]  # khash, owner tag, epoch, sealed key, sealed value


def owner_of(key: bytes) -> bytes:
    """Whose value key seals ``key``: the contract address for contract storage, else the cluster."""
    if key[:1] == STORAGE_NAMESPACE and len(key) >= 1 + ADDRESS_LEN:
        return key[1 : 1 + ADDRESS_LEN]
    return CLUSTER_OWNER


def scope_of(key: bytes) -> bytes:
    """What the owner tag of ``key`` hashes: ``S ‖ address`` for contract storage, else the namespace."""
    if key[:1] == STORAGE_NAMESPACE and len(key) >= 1 + ADDRESS_LEN:
        return key[: 1 + ADDRESS_LEN]
    return key[:1]


def scope_of_prefix(prefix: bytes) -> bytes | None:
    """The one scope every key under ``prefix`` has, or None when a scan must visit every row."""
    if prefix[:1] == STORAGE_NAMESPACE:
        return prefix[: 1 + ADDRESS_LEN] if len(prefix) >= 1 + ADDRESS_LEN else None
    return prefix[:1] or None


def describe_owner(owner: bytes, namespace: bytes = b"") -> str:
    """A contract as ``contract <SS58> (0x<hex>)``, or a cluster namespace by name."""
    if owner == CLUSTER_OWNER or len(owner) != ADDRESS_LEN:
        name = _NAMESPACES.get(namespace, "unknown")
        return f"cluster namespace {namespace!r} ({name})"
    try:
        from phat_runtime.crypto.accounts import to_ss58

        return f"contract {to_ss58(owner)} (0x{owner.hex()})"
    except Exception:  # the error must still be raised even if SS58 encoding is unavailable
        return f"contract 0x{owner.hex()}"


def describe_key(key: bytes) -> str:
    return describe_owner(owner_of(key), key[:1])


def corrupted(who: str, what: str) -> StateCorrupted:
    return StateCorrupted(f"state of {who}: {what}", owner=who, what=what)


def _epoch_bytes(epoch: int) -> bytes:
    return epoch.to_bytes(4, "little")


def _valid_epoch(epoch: object) -> bool:
    return isinstance(epoch, int) and not isinstance(epoch, bool) and 0 <= epoch <= MAX_EPOCH


def value_ad(epoch: int, owner: bytes, key: bytes) -> bytes:
    return b"phat/state/v1/value\x00" + _epoch_bytes(epoch) + bytes([len(owner)]) + owner + key


def key_ad(epoch: int, khash: bytes) -> bytes:
    return b"phat/state/v1/key\x00" + _epoch_bytes(epoch) + khash


def open_blob(cipher: AESGCM, blob: bytes | memoryview, ad: bytes) -> bytes | None:
    """The plaintext of ``nonce ‖ ciphertext ‖ tag``, or None if it does not authenticate."""
    if len(blob) < NONCE_LEN + TAG_LEN:
        return None
    view = memoryview(blob)  # no copies of the ciphertext on the read path
    try:
        return cipher.decrypt(view[:NONCE_LEN], view[NONCE_LEN:], ad)
    except InvalidTag:
        return None


class StateKeys:
    """Every key the store derives from one cluster secret (pink-style HKDF sub-keys).

    Holds secrets: nothing here is ever logged, put in a message, or shown by ``repr``.
    """

    __slots__ = ("__weakref__", "_bases", "_ciphers", "_key_hash", "_meta", "_owner_tag",
                 "_scopes", "_secret", "_tags")

    def __init__(self, cluster_secret: bytes) -> None:
        if not isinstance(cluster_secret, bytes | bytearray) or len(cluster_secret) < 32:
            raise ConfigError("the cluster secret must be at least 32 bytes")
        self._secret = bytes(cluster_secret)
        # Not epoch dependent: a key hashes to the same row under every epoch.
        # Keyed BLAKE2b states, copied per use (constructing a keyed hasher costs ~4× more).
        self._key_hash = hashlib.blake2b(digest_size=KEY_HASH_LEN, person=b"phat-state-key",
                                         key=symmetric_key(self._secret, _PURPOSE + b"/key-hash"))
        self._owner_tag = hashlib.blake2b(digest_size=OWNER_TAG_LEN, person=b"phat-state-own",
                                          key=symmetric_key(self._secret, _PURPOSE + b"/owner-tag"))
        self._meta = AESGCM(symmetric_key(self._secret, _PURPOSE + b"/meta"))
        self._bases: dict[tuple[int, bytes], bytes] = {}  # (epoch, owner or b"") → base key
        self._ciphers: dict[tuple[int, bytes, bytes], AESGCM] = {}  # (+ batch id) → sub-key
        self._tags: dict[bytes, bytes] = {}
        self._scopes: dict[tuple[int, bytes], tuple[bytes, bytes, bytes]] = {}

    def __repr__(self) -> str:
        return "<StateKeys (secret hidden)>"

    # --- derived keys ---------------------------------------------------------------------
    def key_hash(self, key: bytes) -> bytes:
        hasher = self._key_hash.copy()
        hasher.update(key)
        return hasher.digest()

    def owner_tag(self, scope: bytes) -> bytes:
        tag = self._tags.get(scope)
        if tag is None:
            if len(self._tags) >= _CIPHER_CACHE:
                self._tags.clear()
            hasher = self._owner_tag.copy()
            hasher.update(scope)
            tag = hasher.digest()
            self._tags[scope] = tag
        return tag

    def _cipher(self, epoch: int, owner: bytes, batch: bytes) -> AESGCM:
        """Sub-key of a batch under the value key of (epoch, owner); owner ``b""`` = the
        epoch's key-sealing key."""
        cipher = self._ciphers.get((epoch, owner, batch))
        if cipher is None:
            base = self._bases.get((epoch, owner))
            if base is None:
                if len(self._bases) >= _CIPHER_CACHE:
                    self._bases.clear()
                base = (symmetric_key(self._secret, _PURPOSE, _epoch_bytes(epoch), owner) if owner
                        else symmetric_key(self._secret, _PURPOSE + b"/keys", _epoch_bytes(epoch)))
                self._bases[(epoch, owner)] = base
            if len(self._ciphers) >= _CIPHER_CACHE:
                self._ciphers.clear()
            cipher = AESGCM(hashlib.blake2b(batch, digest_size=32, key=base,
                                            person=b"phat-state-bat").digest())
            self._ciphers[(epoch, owner, batch)] = cipher
        return cipher

    @property
    def meta_cipher(self) -> AESGCM:
        return self._meta

    def snapshot_cipher(self, file_id: bytes) -> AESGCM:
        return AESGCM(symmetric_key(self._secret, _PURPOSE + b"/snapshot", file_id))

    # --- rows -----------------------------------------------------------------------------
    def seal_row(self, key: bytes, khash: bytes, value: bytes, epoch: int, batch: bytes,
                 nonces: bytes) -> Row:
        """A row for ``key`` = ``value`` under ``epoch``, in the commit ``batch`` (8 random
        bytes per commit); ``nonces`` = 24 fresh random bytes."""
        owner = owner_of(key)
        n1, n2 = nonces[:NONCE_LEN], nonces[NONCE_LEN : 2 * NONCE_LEN]
        skey = batch + n1 + self._cipher(epoch, b"", batch).encrypt(n1, key, key_ad(epoch, khash))
        sval = batch + n2 + self._cipher(epoch, owner, batch).encrypt(
            n2, value, value_ad(epoch, owner, key))
        return khash, self.owner_tag(scope_of(key)), epoch, skey, sval

    def _open(self, epoch: int, owner: bytes, blob: bytes, ad: bytes) -> bytes | None:
        if len(blob) < BATCH_ID_LEN + NONCE_LEN + TAG_LEN:
            return None
        cipher = self._cipher(epoch, owner, blob[:BATCH_ID_LEN])
        return open_blob(cipher, memoryview(blob)[BATCH_ID_LEN:], ad)

    def open_value(self, key: bytes, tag: object, epoch: object, sealed: object) -> bytes:
        """The value of ``key`` from its row's owner tag, epoch and sealed value (the read
        path: per-(epoch, scope) facts are cached)."""
        if type(epoch) is not int or type(sealed) is not bytes or not 0 <= epoch <= MAX_EPOCH:
            raise corrupted(describe_key(key), "the row's columns have the wrong types or sizes "
                            "(altered file)")
        scope = scope_of(key)
        known = self._scopes.get((epoch, scope))
        if known is None:
            if len(self._scopes) >= _CIPHER_CACHE:
                self._scopes.clear()
            owner = owner_of(key)
            known = self._scopes[(epoch, scope)] = (
                self.owner_tag(scope), owner, value_ad(epoch, owner, b""))
        expected_tag, owner, ad_prefix = known
        if tag != expected_tag:
            raise corrupted(describe_key(key), "the row's owner tag does not match its key "
                            "(row moved between contracts or namespaces)")
        value = self._open(epoch, owner, sealed, ad_prefix + key)  # value_ad ends with the key
        if value is None:
            raise corrupted(describe_key(key), f"value failed authentication under key epoch "
                            f"{epoch} (ciphertext, nonce or tag altered, or the value was swapped "
                            "in from another row or contract)")
        return value

    def open_row(self, row: Sequence[object], expect_scope: bytes | None = None) -> tuple[bytes, bytes]:
        """(key, value) of a whole row, every part authenticated; ``expect_scope`` is the scope
        the scan looked for (the row must really belong to it)."""
        khash, tag, epoch, skey, sealed = row
        if not (isinstance(khash, bytes) and isinstance(epoch, int) and _valid_epoch(epoch)
                and isinstance(skey, bytes)):
            who = describe_owner(owner_of(expect_scope), expect_scope[:1]) if expect_scope else "a row"
            raise corrupted(who, "the row's columns have the wrong types or sizes (altered file)")
        key = self._open(epoch, b"", skey, key_ad(epoch, khash))
        if key is None:
            who = (describe_owner(owner_of(expect_scope), expect_scope[:1]) if expect_scope
                   else f"row 0x{khash[:8].hex()}…")
            raise corrupted(who, f"sealed storage key failed authentication under key epoch "
                            f"{epoch} (altered, or moved from another row)")
        if expect_scope is not None and scope_of(key) != expect_scope:
            raise corrupted(describe_owner(owner_of(expect_scope), expect_scope[:1]),
                            f"a row tagged as theirs holds a key of {describe_key(key)} "
                            "(row moved between contracts or namespaces)")
        return key, self.open_value(key, tag, epoch, sealed)
