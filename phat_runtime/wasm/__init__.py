"""The only importer of wasmtime: engine config, module validation and cache, executor,
seal ABI shims. Must not import state/, pink/ or runtime/.
"""
