"""The attestation samples are part of the repository, byte for byte as SOURCES.md lists them."""

from __future__ import annotations

import hashlib
import re

from .samples import SAMPLES


def test_every_sample_matches_its_recorded_sha256() -> None:
    text = (SAMPLES / "SOURCES.md").read_text()
    sums = dict((name, digest) for digest, name in re.findall(r"^([0-9a-f]{64})  (\S+)$", text, re.M))
    assert len(sums) == 8
    on_disk = {p.name for p in SAMPLES.iterdir()} - {"SOURCES.md"}
    assert on_disk == set(sums)
    for name, digest in sums.items():
        assert hashlib.sha256((SAMPLES / name).read_bytes()).hexdigest() == digest, name
