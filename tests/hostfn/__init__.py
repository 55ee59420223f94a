"""One WAT test per host function and name family (HOST-ABI.md §1–§2)."""
