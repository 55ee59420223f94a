"""Public test doubles for contract authors and our unit tests. Never imported by product code.
"""
