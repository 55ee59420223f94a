"""Pure crypto functions: hashes, signatures, key derivation. No I/O.
"""
