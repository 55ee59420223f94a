"""The `phat` command. Thin: everything a library user needs lives below.
"""
