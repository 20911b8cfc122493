"""The shared Cashfree vectors (``shared/cashfree/vectors``), read from disk at test time.

The shared folder sits beside the repository (``<repo>/../shared``), both here and in CI's fresh
clone; ``SHARED_DIR`` overrides that.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path


def shared_dir() -> Path:
    configured = os.environ.get("SHARED_DIR")
    if configured:
        return Path(configured)
    return Path(__file__).resolve().parents[3] / ".." / "shared"


def vectors_dir() -> Path:
    return shared_dir() / "cashfree" / "vectors"


def read_body(name: str) -> bytes:
    return (vectors_dir() / name).read_bytes()


@dataclass(frozen=True)
class Vector:
    body_name: str
    body: bytes
    secret: str
    timestamp: str
    signature: str
    valid: bool
    note: str

    @property
    def sent_ms(self) -> int:
        """The vector's time in ms; the lago vector's 10-digit timestamp is in seconds."""
        value = int(self.timestamp)
        return value * 1000 if len(self.timestamp) <= 10 else value


def load_vectors() -> list[Vector]:
    entries = json.loads((vectors_dir() / "vectors.json").read_text(encoding="utf-8"))
    return [
        Vector(
            body_name=entry["body"],
            body=read_body(entry["body"]),
            secret=entry["secret"],
            timestamp=entry["timestamp"],
            signature=entry["signature"],
            valid=entry["valid"],
            note=entry["note"],
        )
        for entry in entries
    ]


def vector_id(vector: Vector) -> str:
    return f"{vector.body_name}-{'valid' if vector.valid else 'invalid'}-{vector.signature[:8]}"


def variant(body: bytes, old: bytes, new: bytes) -> bytes:
    """``body`` with ``old`` replaced by ``new``; fails loudly if ``old`` is not there."""
    assert old in body, f"{old!r} not in the sample"
    return body.replace(old, new)
