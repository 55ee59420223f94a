"""HTTP API server, request/response schemas, envelope encryption and the Python client (later issue).
"""
