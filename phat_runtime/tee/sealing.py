"""The sealed-blob format shared by every platform, and sealing-key files.

Owns: the byte layout of a sealed blob (v1), AEAD under a key derived from a platform's root
sealing key, and reading / creating key files with safe permissions. Must not: know where a
platform's root key comes from (the backends pass it in), log or print any key.

Sealed blob v1::

    b"PHSEAL" ‖ 0x01 ‖ len(platform) u8 ‖ platform (ascii) ‖ nonce (12) ‖ ciphertext ‖ tag (16)

AEAD = ChaCha20-Poly1305; key = ``symmetric_key(root_key, b"phat/seal/v1", platform)``; the
associated data is everything before the nonce, so a blob sealed by one platform cannot be
passed off as another's. The root key itself is never used directly (Gramine warns against
using its sealing keys for two purposes).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from phat_runtime.crypto.kdf import symmetric_key
from phat_runtime.errors import SealingError

MAGIC = b"PHSEAL"
VERSION = 1
NONCE_LEN = 12
TAG_LEN = 16
SEAL_KDF_PURPOSE = b"phat/seal/v1"
#: Shortest root sealing key we accept (Gramine's SGX sealing keys are 16 bytes).
MIN_ROOT_KEY_LEN = 16
#: Size of the keys we generate ourselves (simulated platform).
GENERATED_KEY_LEN = 32
KEY_FILE_MODE = 0o600


def _header(platform: str) -> bytes:
    name = platform.encode("ascii")
    if not 0 < len(name) < 256:
        raise ValueError("platform name must be 1..255 ascii bytes")
    return MAGIC + bytes([VERSION, len(name)]) + name


def seal(root_key: bytes, platform: str, plaintext: bytes) -> bytes:
    """Seal ``plaintext`` under ``root_key`` for ``platform`` (fresh random nonce)."""
    header = _header(platform)
    nonce = os.urandom(NONCE_LEN)
    aead = ChaCha20Poly1305(symmetric_key(root_key, SEAL_KDF_PURPOSE, platform.encode("ascii")))
    return header + nonce + aead.encrypt(nonce, plaintext, header)


def unseal(root_key: bytes, platform: str, blob: bytes) -> bytes:
    """Open a blob made by :func:`seal`; any mismatch raises :class:`SealingError`."""
    header = _header(platform)
    if not blob.startswith(MAGIC):
        raise SealingError("not a phat sealed blob (bad magic)")
    if len(blob) < len(MAGIC) + 2 or blob[len(MAGIC)] != VERSION:
        raise SealingError(f"unsupported sealed blob version (this build reads v{VERSION})")
    if not blob.startswith(header):
        name_len = blob[len(MAGIC) + 1]
        other = blob[len(MAGIC) + 2 : len(MAGIC) + 2 + name_len].decode("ascii", "replace")
        raise SealingError(f"blob was sealed by platform {other!r}, not {platform!r}")
    body = blob[len(header):]
    if len(body) < NONCE_LEN + TAG_LEN:
        raise SealingError("sealed blob is truncated")
    aead = ChaCha20Poly1305(symmetric_key(root_key, SEAL_KDF_PURPOSE, platform.encode("ascii")))
    try:
        return aead.decrypt(body[:NONCE_LEN], body[NONCE_LEN:], header)
    except InvalidTag:
        raise SealingError(
            "sealed blob failed authentication: it was tampered with, or sealed under another "
            "key (another enclave measurement, machine or key file)"
        ) from None


def check_root_key(key: bytes, source: str) -> bytes:
    if len(key) < MIN_ROOT_KEY_LEN:
        raise SealingError(f"sealing key from {source} is {len(key)} bytes; "
                           f"at least {MIN_ROOT_KEY_LEN} are needed")
    return key


def read_key_file(path: Path, *, require_private: bool = True) -> bytes:
    """Raw key bytes from ``path``. A key file readable by group or others is refused: such a
    file seals nothing."""
    try:
        st = path.stat()
        if require_private and st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise SealingError(f"sealing key file {path} is accessible by group/others "
                               f"(mode {stat.S_IMODE(st.st_mode):04o}); chmod 600 it")
        key = path.read_bytes()
    except FileNotFoundError:
        raise SealingError(f"sealing key file {path} does not exist") from None
    except OSError as exc:
        raise SealingError(f"cannot read sealing key file {path}: {exc.strerror}") from exc
    return check_root_key(key, str(path))


def create_key_file(path: Path) -> bytes:
    """Create ``path`` (mode 0600, must not exist) holding fresh random key bytes."""
    key = os.urandom(GENERATED_KEY_LEN)
    write_private_file(path, key, exclusive=True)
    return key


def write_private_file(path: Path, data: bytes, *, exclusive: bool = False) -> None:
    """Write ``data`` to ``path`` with mode 0600 atomically: a 0600 temp file in the same
    directory, fsync, rename (no hard links: Gramine's file systems have none).

    With ``exclusive`` the target must not exist yet.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if exclusive and path.exists():
        raise SealingError(f"{path} already exists; refusing to overwrite it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, KEY_FILE_MODE)
        try:
            os.fchmod(fd, KEY_FILE_MODE)  # the umask may have narrowed it; never widened
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive and path.exists():  # appeared while we wrote
            raise FileExistsError(path)
        os.replace(tmp, path)
    except FileExistsError:
        tmp.unlink(missing_ok=True)
        raise SealingError(f"{path} already exists (or a stale {tmp.name}); "
                           "refusing to overwrite it") from None
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SealingError(f"cannot write {path}: {exc.strerror or exc}") from exc
