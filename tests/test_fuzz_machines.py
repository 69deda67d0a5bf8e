"""Seeded mutation fuzzing of every machine-file format numasim reads.

Shipped machine files (numasim YAML, ``numactl --hardware`` text, hwloc XML v1/v2/v3, oracle
``.layout`` files, a sysfs tarball) are mutated as files get damaged in the wild: lines
deleted, duplicated or swapped, numbers replaced by huge, negative or zero ones, text cut
short, bytes flipped.  Each mutant is loaded (and its zones and zonelists derived): the answer
must be a machine or a :class:`NumasimError` -- never another exception, which would reach the
user as a traceback.  Same seed, same mutants: a failure names its seed and file, and
``mutate(text, random.Random(seed))`` reproduces it.
"""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from numasim.errors import NumasimError
from numasim.topology.derive import boot_state
from numasim.topology.loaders import load_machine

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "topologies"
SOURCES = {
    "yaml": sorted((ROOT / "configs" / "machines").glob("*.yaml")),
    "numactl": sorted((DATA / "numactl-hardware").glob("*.txt")),
    "layout": sorted((DATA / "layouts").glob("*.layout")),
    # the small XML files: the big ones take most of the time and hold the same constructs
    "hwloc": [p for p in sorted((DATA / "hwloc").glob("*.xml")) if p.stat().st_size < 140_000],
}
CASES = {"yaml": 900, "numactl": 900, "layout": 900, "hwloc": 240}
BUDGET_S = 60.0
"""The whole fuzz run (a few thousand cases) must fit in this; each format gets its share."""

_NUMBER = re.compile(r"\d+")
_NASTY = ["0", "-1", "1", "4096", "8191", "8192", "1023", "1024", "99999999999999999999",
          "1e30", "0x10", "18446744073709551616", "255", "254", "9" * 40, "", "nan", "-0"]


def mutate(text: str, rng: random.Random) -> str:
    """One to three damages of the kinds real files suffer."""
    for _ in range(rng.randint(1, 3)):
        lines = text.split("\n")
        op = rng.randrange(8)
        k = rng.randrange(len(lines)) if lines else 0
        if op == 0 and len(lines) > 1:
            del lines[k]
        elif op == 1:
            lines.insert(k, lines[k] if lines else "")
        elif op == 2 and len(lines) > 1:
            j = rng.randrange(len(lines))
            lines[k], lines[j] = lines[j], lines[k]
        elif op in (3, 4):  # a number replaced
            spots = list(_NUMBER.finditer(text))
            if spots:
                m = rng.choice(spots)
                text = text[:m.start()] + rng.choice(_NASTY) + text[m.end():]
                continue
        elif op == 5:
            text = text[:rng.randrange(len(text) + 1)]
            continue
        elif op == 6 and text:
            i = rng.randrange(len(text))
            text = text[:i] + rng.choice("-,:[]{}<>\"'&*!#\t 0x\u00e9") + text[i + 1:]
            continue
        else:  # a line repeated many times over (wide rows, long lists)
            lines[k] = " ".join([lines[k]] * rng.randint(2, 50)) if lines else ""
        text = "\n".join(lines)
    return text


def check_one(path: Path) -> None:
    try:
        m = load_machine(path)
    except NumasimError as e:
        assert str(e).strip(), "an error with no message"
        return
    boot_state(m)  # zones, zonelists and watermarks must build too


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_mutated_machine_files_load_or_fail_cleanly(fmt, tmp_path):
    files = SOURCES[fmt]
    assert files, f"no shipped {fmt} files found"
    texts = [(p, p.read_text()) for p in files]
    budget = BUDGET_S * CASES[fmt] / sum(CASES.values())
    start = time.perf_counter()
    done = 0
    for seed in range(CASES[fmt]):
        if time.perf_counter() - start > budget:
            break  # a slow machine runs fewer cases, never longer
        rng = random.Random(f"{fmt}-{seed}")
        src, text = texts[seed % len(texts)]
        target = tmp_path / f"m{seed % 7}{src.suffix}"
        target.write_text(mutate(text, rng), encoding="utf-8", errors="surrogatepass")
        try:
            check_one(target)
        except Exception as e:  # noqa: BLE001 - the point is to name any other exception
            pytest.fail(f"seed {fmt}-{seed} on {src.name}: {type(e).__name__}: {e}"[:2000])
        done += 1
    assert done >= min(CASES[fmt], 100), f"only {done} cases ran in {budget:.0f} s"


def test_damaged_sysfs_tarball(tmp_path):
    """The sysfs tarball: cut short or with bytes flipped, it is refused with a message."""
    src = (DATA / "hwloc" / "sysfs" / "fakememinitiators-1np2c+1npp+gi.tar.bz2").read_bytes()
    rng = random.Random("tarball")
    for seed in range(60):
        data = bytearray(src)
        if seed % 2:
            data = data[:rng.randrange(len(data))]
        else:
            for _ in range(rng.randint(1, 4)):
                data[rng.randrange(len(data))] = rng.randrange(256)
        target = tmp_path / "t.tar.bz2"
        target.write_bytes(bytes(data))
        try:
            check_one(target)
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"tarball seed {seed}: {type(e).__name__}: {e}"[:2000])
