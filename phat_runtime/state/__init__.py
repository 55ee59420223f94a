"""State backends: key-value store with per-frame overlays (snapshot, commit, revert).
"""
