"""Point identity: canonical JSON, the key of a resolved config, and derived seeds.

A point's key is the first 16 hex digits of the SHA-256 of its resolved config written as
canonical JSON (sorted keys, no spaces, ASCII only).  The same config therefore has the same
key on every computer and in every run, which is what lets a sweep resume and lets two
workers never compute the same point twice.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_LENGTH = 16


def canonical_json(obj: Any) -> str:
    """``obj`` as JSON with one spelling only (sorted keys, no whitespace, ASCII)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


# Keys and seeds are hashed from a config under the names its fields had when keys were
# introduced, so renaming a field (``kernel`` became ``linux``) neither orphans the results a
# folder holds nor changes a point's derived seed.
HASHED_AS = {"linux": "kernel"}


def _hashed_form(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {HASHED_AS.get(k, k): v for k, v in obj.items()}
    return obj


def point_key(config: dict[str, Any]) -> str:
    """The key of a resolved point config (names its result file)."""
    text = canonical_json(_hashed_form(config))
    return hashlib.sha256(text.encode()).hexdigest()[:KEY_LENGTH]


def derive_seed(experiment_seed: int, identity: Any, repetition: int) -> int:
    """A 32-bit seed from the experiment's seed, what the point is, and its repetition.

    It depends on nothing else -- not on the order points are run in, not on which worker
    runs them -- so a sweep gives the same numbers with any ``-j``.
    """
    ident = canonical_json(_hashed_form(identity))
    text = f"numasim-seed:{int(experiment_seed)}:{int(repetition)}:{ident}"
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")
