"""Shipped machine descriptions, found by name (``clx-2s``) as well as by path."""

from __future__ import annotations

from pathlib import Path

CONFIG_DIRS = (Path(__file__).resolve().parents[3] / "configs" / "machines",)


def shipped_machines() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for d in CONFIG_DIRS:
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                out[p.stem] = p
    return out


def find_shipped(name: str) -> Path | None:
    return shipped_machines().get(name.removesuffix(".yaml"))
