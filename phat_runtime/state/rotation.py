"""Re-encryption after a key rotation: rewrite rows sealed under older epochs.

:meth:`EncryptedStore.rotate` only changes which epoch *new* writes use; rows keep the epoch
they were sealed under (it is a column, authenticated as associated data) and stay readable.
:func:`reencrypt_rows` walks the rows of older epochs in key-hash order, a batch per SQLite
transaction, opening each (every part authenticated) and sealing it again under the current
epoch with fresh nonces. Plaintexts do not change, so neither does the state root nor the
checkpoint. An interrupted pass leaves every row readable (each batch is atomic) and a new pass
picks up what is left — the query only selects rows of other epochs.

Must not: change a plaintext; run inside a block's transaction (the store's lock serialises).
"""

from __future__ import annotations

import os
from collections.abc import Callable

from phat_runtime.state.rows import BATCH_ID_LEN, NONCE_LEN, Row, StateKeys
from phat_runtime.state.sqlite import Database


def reencrypt_rows(db: Database, keys: StateKeys, epoch: int, batch_size: int,
                   progress: Callable[[int, int], None] | None) -> int:
    """Seal every row of another epoch under ``epoch``; returns how many were rewritten."""
    total = db.count(not_epoch=epoch)
    done = 0
    after = b""
    while True:
        rows = db.rows_after(after, epoch, batch_size)
        if not rows:
            break
        batch = os.urandom(BATCH_ID_LEN)
        nonces = os.urandom(NONCE_LEN * len(rows))
        fresh: list[Row] = []
        for i, row in enumerate(rows):
            entry = keys.open_row_entry(row)
            khash = row[0]
            fresh.append((khash, epoch, keys.seal(khash, entry, epoch, batch,
                                                  nonces[NONCE_LEN * i : NONCE_LEN * (i + 1)])))
        with db.transaction(f"re-encrypting {len(fresh)} rows"):
            db.upsert(fresh)
        done += len(rows)
        after = rows[-1][0]
        if progress is not None:
            progress(done, max(total, done))
    return done
