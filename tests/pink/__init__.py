"""Tests of the pink chain extension (HOST-ABI.md §3), each through real wasm."""
