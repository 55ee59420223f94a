"""Sealing rows of the encrypted state: who owns a key, keyed hashes, one AEAD per row.

Owns :class:`StateKeys` — every key the store derives from the cluster secret — and the row
format (store format ``phat-state/3``). A row is ``(khash, epoch, sealed)``:

* ``khash`` = *owner tag* (16) ‖ *key hash* (16). The owner tag is the keyed BLAKE2b-128 of
  the key's scope (``b"S" ‖ address`` for contract storage, the namespace byte otherwise), so one
  contract's rows are one range of the primary key and a prefix scan is a range scan; the key
  hash is the keyed BLAKE2b-128 of the plaintext key. Neither depends on the epoch: a lookup
  finds a row whatever epoch sealed it.
* ``sealed`` = ``batch id (8) ‖ nonce (12) ‖ AES-256-GCM(row key, entry, AD = khash) ‖ tag
  (16)`` where *entry* is the SCALE ``(Vec<u8> key, Vec<u8> value)`` encoding the state root
  hashes (``root.encode_entry``) and the row key is the per-batch sub-key of
  ``symmetric_key(cluster secret, "phat/state/v3", epoch, owner tag)`` — one key per contract
  (or cluster namespace) and epoch. The key sits inside the authenticated plaintext and the
  khash is the associated data, so a sealed entry cannot move to another row, another key of
  the same contract, another contract, or another epoch: each fails authentication.

Batch sub-keys: each commit (a block, a re-encryption batch, an import batch) picks one random
batch id and seals under ``BLAKE2b-256(key = row key, batch id)``: random 96-bit GCM nonces are
safe for ~2³² messages per key, and a busy contract could reach that under one epoch; per-batch
sub-keys bound it by one batch's writes instead. Any failure is a
:class:`~phat_runtime.errors.StateCorrupted` naming the contract (SS58 and hex) or the cluster
namespace and what failed. Must not: log or show any key; import anything above ``crypto/``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from phat_runtime.crypto.kdf import symmetric_key
from phat_runtime.errors import ConfigError, StateCorrupted, StateError
from phat_runtime.state.root import compact_len, decode_entry, read_compact

#: The runtime's contract-storage namespace (runtime/records.py): ``S ‖ address ‖ trie id ‖ key``.
STORAGE_NAMESPACE = b"S"
ADDRESS_LEN = 32
#: Whose key seals a namespace that is not contract storage (error messages only).
CLUSTER_OWNER = b"cluster"
BATCH_ID_LEN = 8
NONCE_LEN = 12
TAG_LEN = 16
OWNER_TAG_LEN = 16
KEY_HASH_LEN = 16
KHASH_LEN = OWNER_TAG_LEN + KEY_HASH_LEN
SEALED_OVERHEAD = BATCH_ID_LEN + NONCE_LEN + TAG_LEN
MAX_EPOCH = 2**32 - 1
#: Derived keys and ciphers kept per store; past that the cache restarts (re-deriving is µs).
_CIPHER_CACHE = 4096
_PURPOSE = b"phat/state/v3"
# Names for error messages only (the runtime owns the layout: runtime/records.py).
_NAMESPACES = {b"C": "code", b"c": "code info", b"K": "contract registry", b"B": "balances",
               b"N": "instantiation nonce", b"S": "contract storage", b"Y": "cluster settings"}

Row = tuple[bytes, int, bytes]  # khash, epoch, sealed entry


def owner_of(key: bytes) -> bytes:
    """Whose state ``key`` is: the contract address for contract storage, else the cluster."""
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


def describe_scope(scope: bytes) -> str:
    return describe_owner(owner_of(scope), scope[:1])


def corrupted(who: str, what: str) -> StateCorrupted:
    return StateCorrupted(f"state of {who}: {what}", owner=who, what=what)


def _valid_epoch(epoch: object) -> bool:
    return type(epoch) is int and 0 <= epoch <= MAX_EPOCH


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
    Thread-safe: caches are plain dicts (a race only derives a key twice).
    """

    __slots__ = ("__weakref__", "_bases", "_ciphers", "_epoch_secrets", "_key_hash", "_meta",
                 "_owner_tag", "_secret", "_tags")

    def __init__(self, cluster_secret: bytes, epoch_secrets: Mapping[int, bytes] | None = None) -> None:
        """``cluster_secret`` is epoch 0's key: row ids, metadata and epoch 0's values derive
        from it. ``epoch_secrets`` (a chain cluster's key ring) gives every later epoch its own
        key, so a worker that never received an epoch's key cannot read values sealed under it;
        without it (standalone) later epochs derive from ``cluster_secret``."""
        if not isinstance(cluster_secret, bytes | bytearray) or len(cluster_secret) < 32:
            raise ConfigError("the cluster secret must be at least 32 bytes")
        self._secret = bytes(cluster_secret)
        # Keyed BLAKE2b states, copied per use (constructing a keyed hasher costs ~4× more).
        self._key_hash = hashlib.blake2b(digest_size=KEY_HASH_LEN, person=b"phat-state-key",
                                         key=symmetric_key(self._secret, _PURPOSE + b"/key-hash"))
        self._owner_tag = hashlib.blake2b(digest_size=OWNER_TAG_LEN, person=b"phat-state-own",
                                          key=symmetric_key(self._secret, _PURPOSE + b"/owner-tag"))
        self._meta = AESGCM(symmetric_key(self._secret, _PURPOSE + b"/meta"))
        self._bases: dict[tuple[int, bytes], bytes] = {}  # (epoch, owner tag) → row key
        self._ciphers: dict[tuple[int, bytes, bytes], AESGCM] = {}  # (+ batch id) → sub-key
        self._tags: dict[bytes, bytes] = {}  # scope → owner tag
        self._epoch_secrets = None if epoch_secrets is None else dict(epoch_secrets)

    def add_epoch_secret(self, epoch: int, secret: bytes) -> None:
        """A key ring's new epoch key (chain clusters: after a rotation or handover)."""
        if self._epoch_secrets is None:
            raise ConfigError("this state has no per-epoch keys (standalone): epochs derive from one key")
        self._epoch_secrets[epoch] = bytes(secret)

    def _epoch_secret(self, epoch: int) -> bytes:
        if epoch == 0 or self._epoch_secrets is None:
            return self._secret
        secret = self._epoch_secrets.get(epoch)
        if secret is None:
            raise StateError(f"no cluster key of epoch {epoch}: this worker never received it "
                             "(revoked, or the handover is still pending)")
        return secret

    def __repr__(self) -> str:
        return "<StateKeys (secret hidden)>"

    # --- derived keys ---------------------------------------------------------------------
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

    def key_hash(self, key: bytes) -> bytes:
        """The row id of ``key``: owner tag ‖ keyed hash of the key."""
        if key[:1] == STORAGE_NAMESPACE and len(key) >= 1 + ADDRESS_LEN:
            scope = key[: 1 + ADDRESS_LEN]
        else:
            scope = key[:1]
        tag = self._tags.get(scope) or self.owner_tag(scope)
        hasher = self._key_hash.copy()
        hasher.update(key)
        return tag + hasher.digest()

    def cipher(self, epoch: int, tag: bytes, batch: bytes) -> AESGCM:
        """The sub-key of ``batch`` under the row key of (epoch, owner tag)."""
        cipher = self._ciphers.get((epoch, tag, batch))
        if cipher is None:
            base = self._bases.get((epoch, tag))
            if base is None:
                if len(self._bases) >= _CIPHER_CACHE:
                    self._bases.clear()
                base = symmetric_key(self._epoch_secret(epoch), _PURPOSE, epoch.to_bytes(4, "little"), tag)
                self._bases[(epoch, tag)] = base
            if len(self._ciphers) >= _CIPHER_CACHE:
                self._ciphers.clear()
            cipher = AESGCM(hashlib.blake2b(batch, digest_size=32, key=base,
                                            person=b"phat-state-bat").digest())
            self._ciphers[(epoch, tag, batch)] = cipher
        return cipher

    @property
    def meta_cipher(self) -> AESGCM:
        return self._meta

    def snapshot_cipher(self, file_id: bytes) -> AESGCM:
        return AESGCM(symmetric_key(self._secret, _PURPOSE + b"/snapshot", file_id))

    # --- rows -----------------------------------------------------------------------------
    def seal(self, khash: bytes, entry: bytes, epoch: int, batch: bytes, nonce: bytes) -> bytes:
        """The sealed column of a row: ``entry`` (SCALE key and value) under ``epoch``, in the
        commit ``batch`` (8 random bytes per commit), with a fresh 12-byte ``nonce``."""
        cipher = self.cipher(epoch, khash[:OWNER_TAG_LEN], batch)
        return batch + nonce + cipher.encrypt(nonce, entry, khash)

    def open_entry(self, khash: bytes, epoch: int, sealed: bytes) -> bytes | None:
        """The entry sealed in a row, or None if it does not authenticate."""
        if len(sealed) < SEALED_OVERHEAD:
            return None
        cipher = self.cipher(epoch, khash[:OWNER_TAG_LEN], sealed[:BATCH_ID_LEN])
        return open_blob(cipher, memoryview(sealed)[BATCH_ID_LEN:], khash)

    def entry_of(self, key: bytes, khash: bytes, epoch: object, sealed: object) -> bytes:
        """The authenticated entry of ``key``'s row (it must hold that very key)."""
        if not _valid_epoch(epoch) or type(sealed) is not bytes:
            raise corrupted(describe_key(key), "the row's columns have the wrong types or sizes "
                            "(altered file)")
        entry = self.open_entry(khash, epoch, sealed)  # type: ignore[arg-type]
        if entry is None:
            raise corrupted(describe_key(key), f"value failed authentication under key epoch "
                            f"{epoch} (ciphertext, nonce or tag altered, or the value was swapped "
                            "in from another row or contract)")
        if not entry.startswith(compact_len(len(key)) + key):
            raise corrupted(describe_key(key), "the row holds another key (forged row)")
        return entry

    def open_value(self, key: bytes, khash: bytes, epoch: object, sealed: object) -> bytes:
        """The value of ``key`` from its row (the read path)."""
        entry = self.entry_of(key, khash, epoch, sealed)
        try:
            size, at = read_compact(entry, len(compact_len(len(key))) + len(key))
        except ValueError:
            size, at = -1, 0
        if len(entry) - at != size:
            raise corrupted(describe_key(key), "the sealed entry is malformed")
        return entry[at:]

    def open_row(self, row: Sequence[object], expect_scope: bytes | None = None) -> tuple[bytes, bytes]:
        """(key, value) of a whole row, every part authenticated; ``expect_scope`` is the scope
        a scan looked for (the row must really belong to it)."""
        return decode_row(self.open_row_entry(row, expect_scope))

    def open_row_entry(self, row: Sequence[object], expect_scope: bytes | None = None) -> bytes:
        """The authenticated entry of a row whose key is not known yet (scans, rotation)."""
        khash, epoch, sealed = row
        who = describe_scope(expect_scope) if expect_scope else None
        if not (type(khash) is bytes and len(khash) == KHASH_LEN and _valid_epoch(epoch)
                and type(sealed) is bytes):
            raise corrupted(who or "a row", "the row's columns have the wrong types or sizes "
                            "(altered file)")
        entry = self.open_entry(khash, epoch, sealed)  # type: ignore[arg-type]
        if entry is None:
            raise corrupted(who or f"row 0x{khash[:8].hex()}…", f"sealed entry failed "
                            f"authentication under key epoch {epoch} (altered, or moved from "
                            "another row or contract)")
        if expect_scope is not None:
            key = decode_row(entry)[0]
            if scope_of(key) != expect_scope or self.key_hash(key) != khash:
                raise corrupted(describe_scope(expect_scope), f"a row tagged as theirs holds a "
                                f"key of {describe_key(key)} (forged row)")
        return entry


def decode_row(entry: bytes) -> tuple[bytes, bytes]:
    """(key, value) of an authenticated entry."""
    try:
        return decode_entry(entry)
    except ValueError as exc:
        raise corrupted("a row", f"the sealed entry is malformed ({exc})") from exc
