"""TEE platforms, quotes and attestation verification (later issue).
"""
