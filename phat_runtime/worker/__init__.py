"""Wires identity, cluster membership, block pipeline and query service (later issue).
"""
