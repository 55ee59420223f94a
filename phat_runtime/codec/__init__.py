"""Pure codecs: SCALE helpers, ink! metadata, selectors. No I/O beyond reading a file given by path.
"""
