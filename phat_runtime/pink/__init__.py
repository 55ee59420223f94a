"""Pink chain extension: function table, dispatch, QUERY vs TRANSACTION backends.
Must not import wasm/.
"""
