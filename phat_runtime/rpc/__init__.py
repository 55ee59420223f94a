"""HTTP API server, encrypted sessions and wire format (v2), and the Python client.
"""
