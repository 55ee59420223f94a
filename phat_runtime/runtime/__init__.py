"""Clusters, contract registry, query()/apply_transaction(), frames and the host implementation.

The only place where `wasm/` (execution) meets `pink/` (chain extension) and `state/`.
"""
