"""The gas schedule: what a contract pays for wasm instructions and for host-side work.

Gas is pallet-contracts ``ref_time`` weight — picoseconds of reference time — so the
transaction cap of 2.5·10¹² gas stands for about 2.5 s of work. Every number here is
consensus-relevant: a transaction's ``gas_used`` (and whether it runs out of gas) depends on
them, so every worker of a cluster must use the same schedule. docs/host-abi.md ("Gas") lists
them with what they were measured against (``bench/bench_host_gas.py``).

wasmtime meters wasm in *fuel* (one unit per instruction); gas = fuel × :data:`GAS_PER_FUEL`.
Host functions are Python: each call costs microseconds whatever the instructions around it,
so each pays a base weight on entry (:data:`HOST_CALL_GAS`), plus per byte copied between
linear memory and the host (:data:`GAS_PER_BYTE`), plus the extra weight of what it does
(storage, hashing, signatures: :data:`STORAGE_READ_GAS` and friends; chain-extension
functions declare theirs in ``pink/``).

Host charges are collected as a debt on the frame and taken from wasmtime's fuel when the
debt reaches :data:`HOST_DEBT_LIMIT_FUEL`, before a nested call, before ``gas_left`` and when
the frame ends (``wasm/frame.py``): reading and writing wasmtime's fuel costs as much as a
cheap host call. Where the debt is settled is a function of the contract's own calls, so an
execution runs out of gas at the same point on every worker.
"""

from __future__ import annotations

from phat_runtime.crypto.signatures import SIGNATURE_GAS

#: Gas per unit of wasmtime fuel: pink's schedule charges ``instruction_weights.base = 8000``
#: per wasm instruction.
GAS_PER_FUEL = 8000

#: Every host-function call, on entry: the Python call path (wasmtime-py's trampoline,
#: argument and result conversion, the frame lookup) costs 3–15 µs per call on the reference
#: machine. Without it a loop of cheap host calls burnt the transaction cap in 125–500 s.
HOST_CALL_GAS = 10_000_000
#: Each byte a host function copies between linear memory and the host (input, output,
#: keys, values, hash input), and each byte hashed or written to storage or an event.
GAS_PER_BYTE = GAS_PER_FUEL
#: A storage read (``get_storage``, ``contains_storage``, ``take_storage``): on a worker it
#: may miss every cache and go to SQLite and AES-GCM.
STORAGE_READ_GAS = 24_000_000
#: A storage write or removal (and an event): kept for the block's commit, in the state root.
STORAGE_WRITE_GAS = 16_000_000


def fuel(gas: int) -> int:
    """``gas`` in wasmtime fuel units (every constant above is a multiple of GAS_PER_FUEL)."""
    return gas // GAS_PER_FUEL


HOST_CALL_FUEL = fuel(HOST_CALL_GAS)
FUEL_PER_BYTE = fuel(GAS_PER_BYTE)
STORAGE_READ_FUEL = fuel(STORAGE_READ_GAS)
STORAGE_WRITE_FUEL = fuel(STORAGE_WRITE_GAS)
SIGNATURE_FUEL = fuel(SIGNATURE_GAS)
#: Host debt taken from the fuel once it reaches this much (40 cheap host calls, 0.4 ms):
#: the most host work an execution can do beyond its gas limit before it runs out of gas.
HOST_DEBT_LIMIT_FUEL = 40 * HOST_CALL_FUEL
