"""Memory traces: the canonical numpy format, its validator, and a valgrind lackey reader.

**Canonical format** (``.npz``, written by :func:`save_trace`): three arrays of equal length,
one element per memory access in program order (per CPU)::

    cpu      integer  >= 0           CPU the access ran on (a CPU of the simulated machine)
    address  unsigned 64-bit         virtual byte address, below 2**47 (x86-64 user space)
    write    0 or 1 (bool or uint8)  1 = store (or read-modify-write), 0 = load

plus an optional ``format`` array holding the string ``numasim-trace-1``.  An access that
crosses a cache-line boundary is one record; numasim splits it.  :func:`validate_trace`
checks all of this and names the array and the first bad element.

**valgrind lackey** (``valgrind --tool=lackey --trace-mem=yes prog 2> trace.txt``): lines
``I  addr,size`` (instruction fetch; skipped unless asked for), `` L addr,size`` (load),
`` S addr,size`` (store), `` M addr,size`` (modify: a load and a store of the same data, one
write access here).  Lines starting with ``==`` are valgrind's own messages.  Lackey traces
one process without thread ids: every record gets the same CPU.

Replay: the pages the trace touches are grouped into spans (gaps up to 64 KiB are bridged),
each span is ``mmap``-ed at its own address as private anonymous memory under the task
policy, and the accesses are replayed per CPU in trace order at cache-line granularity.
"""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from numasim.errors import ConfigError

FORMAT_TAG = "numasim-trace-1"
ADDRESS_LIMIT = 1 << 47
SPAN_GAP_PAGES = 16
MAX_RECORD_BYTES = 4096  # one lackey record: an access of at most a page (xsave is < 3 KiB)
MAX_ACCESSES = 1 << 28  # elements per trace array: ~4.5 GB of host memory for the replay
NPZ_MAX_RATIO = 100  # uncompressed / compressed size above which an .npz is a zip bomb
NPZ_SMALL = 256 << 20  # ... once it expands to more than this


HEX = re.compile(r"[0-9a-fA-F]{1,16}")


@dataclass
class TraceData:
    cpu: np.ndarray  # int64
    address: np.ndarray  # uint64
    write: np.ndarray  # uint8
    file: str = ""

    def __len__(self) -> int:
        return int(self.cpu.shape[0])


def save_trace(path: str | os.PathLike, cpu, address, write) -> None:
    """Write a trace in the canonical format (validating it first)."""
    data = {"cpu": np.asarray(cpu), "address": np.asarray(address),
            "write": np.asarray(write)}
    validate_trace(data, file=str(path))
    np.savez_compressed(path, cpu=data["cpu"].astype(np.int32),
                        address=data["address"].astype(np.uint64),
                        write=data["write"].astype(np.uint8), format=np.array(FORMAT_TAG))


def validate_trace(data, *, file: str | None = None) -> TraceData:
    """Check a mapping of arrays against the canonical format; return it normalised.

    Raises :class:`ConfigError` naming the file, the array and the first bad element.
    """
    for key in ("cpu", "address", "write"):
        if key not in data:
            raise ConfigError(f"missing array '{key}'", file=file, field=key,
                              hint="a numasim trace has arrays cpu, address, write")
    arrs = {k: np.asarray(data[k]) for k in ("cpu", "address", "write")}
    if "format" in data:
        tag = str(np.asarray(data["format"]))
        if tag != FORMAT_TAG:
            raise ConfigError(f"unknown trace format {tag!r}", file=file, field="format",
                              hint=f"expected {FORMAT_TAG!r}")
    n = None
    for k, a in arrs.items():
        if a.ndim != 1:
            raise ConfigError(f"'{k}' must be one-dimensional, got shape {a.shape}", file=file,
                              field=k)
        if n is None:
            n = a.shape[0]
        elif a.shape[0] != n:
            raise ConfigError(f"'{k}' has {a.shape[0]} elements but 'cpu' has {n}", file=file,
                              field=k, hint="the arrays must have one element per access")
        if a.dtype.kind not in "iub":
            raise ConfigError(f"'{k}' must hold integers, got {a.dtype}", file=file, field=k)
    if n == 0:
        raise ConfigError("the trace has no accesses", file=file, field="cpu",
                          hint="a numasim trace has one element per access in each of "
                               "cpu, address, write")
    cpu = arrs["cpu"].astype(np.int64)
    if cpu.size and cpu.min() < 0:
        i = int(np.argmax(cpu < 0))
        raise ConfigError(f"cpu[{i}] is {cpu[i]}, CPUs are >= 0", file=file, field="cpu")
    addr_raw = arrs["address"]
    if addr_raw.dtype.kind == "i" and addr_raw.size and addr_raw.min() < 0:
        i = int(np.argmax(addr_raw < 0))
        raise ConfigError(f"address[{i}] is negative", file=file, field="address")
    addr = addr_raw.astype(np.uint64)
    if addr.size and addr.max() >= ADDRESS_LIMIT:
        i = int(np.argmax(addr >= ADDRESS_LIMIT))
        raise ConfigError(f"address[{i}] = {int(addr[i]):#x} is not a user-space address "
                          "(must be below 2**47)", file=file, field="address")
    w = arrs["write"].astype(np.int64)
    if w.size and (w.min() < 0 or w.max() > 1):
        i = int(np.argmax((w < 0) | (w > 1)))
        raise ConfigError(f"write[{i}] is {w[i]}, must be 0 (load) or 1 (store)", file=file,
                          field="write")
    return TraceData(cpu, addr, w.astype(np.uint8), file or "")


def check_npz_size(path: str | os.PathLike) -> None:
    """Refuse an ``.npz`` whose arrays would fill the host's memory before they are read:
    more than MAX_ACCESSES elements, or a zip bomb (a few MB that expand a hundredfold and
    more).  Reads only the zip directory and the .npy headers."""
    from numpy.lib import format as npformat

    compressed = os.path.getsize(path)
    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                total += info.file_size
                if not info.filename.endswith(".npy"):
                    continue
                with zf.open(info) as f:
                    version = npformat.read_magic(f)
                    read_header = (npformat.read_array_header_1_0 if version == (1, 0)
                                   else npformat.read_array_header_2_0)
                    shape, _, dtype = read_header(f)
                elems = int(np.prod(shape, dtype=object)) if shape else 1
                if elems > MAX_ACCESSES:
                    raise ConfigError(f"array '{info.filename[:-4]}' has {elems} elements, "
                                      f"more than numasim replays ({MAX_ACCESSES})",
                                      file=str(path), field=info.filename[:-4],
                                      hint="cut the trace into parts, or sample it")
                total = max(total, elems * dtype.itemsize)
    except ConfigError:
        raise
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, TypeError, KeyError) as e:
        raise ConfigError(f"not a readable .npz trace (cut short or corrupt?): {e}",
                          file=str(path), field="trace",
                          hint="write traces with numasim.workloads.trace.save_trace") from None
    if total > NPZ_SMALL and total > NPZ_MAX_RATIO * compressed:
        raise ConfigError(f"the .npz expands from {compressed} bytes to {total} bytes: "
                          "refused as a zip bomb", file=str(path), field="trace",
                          hint="a real trace compresses less than "
                               f"{NPZ_MAX_RATIO}x; save it with save_trace")


def load_npz(path: str | os.PathLike) -> TraceData:
    check_npz_size(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except FileNotFoundError:
        raise ConfigError("no such file", file=str(path)) from None
    except (zipfile.BadZipFile, EOFError, ValueError, OSError, TypeError, KeyError,
            NotImplementedError, MemoryError) as e:
        raise ConfigError(f"not a readable .npz trace (cut short or corrupt?): {e}",
                          file=str(path), field="trace",
                          hint="write traces with numasim.workloads.trace.save_trace") from None
    return validate_trace(data, file=str(path))


def parse_lackey(lines, *, file: str = "", cpu: int = 0, instructions: bool = False
                 ) -> TraceData:
    """Read lackey ``--trace-mem=yes`` output.  Raises ConfigError naming the line of a
    malformed (e.g. cut off) record."""
    addrs: list[int] = []
    writes: list[int] = []
    seen_record = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\n")
        if not line.strip() or line.startswith("=="):
            continue
        kind = line[:2].strip() if line[:1] == " " else line[:1]
        body = line[2:].strip() if line[:1] == " " else line[1:].strip()
        if kind not in ("I", "L", "S", "M"):
            raise ConfigError(f"line {lineno} is not a lackey record: {line[:40]!r}",
                              file=file, line=lineno, field="trace",
                              hint="expected 'I  addr,size', ' L addr,size', ' S addr,size' or "
                                   "' M addr,size' (valgrind --tool=lackey --trace-mem=yes)")
        a, comma, s = body.partition(",")
        try:
            if not comma or not HEX.fullmatch(a) or not s.strip().isdigit():
                raise ValueError
            addr = int(a, 16)
            size = int(s)
            if size <= 0:
                raise ValueError
        except ValueError:
            raise ConfigError(f"line {lineno}: malformed record {line.strip()!r} (is the trace "
                              "cut off?)", file=file, line=lineno, field="trace",
                              hint="each record is 'KIND hexaddr,size'") from None
        seen_record = True
        if size > MAX_RECORD_BYTES:
            raise ConfigError(f"line {lineno}: a record of {size} bytes (lackey records one "
                              "instruction's access, at most a few hundred bytes)", file=file,
                              line=lineno, field="trace",
                              hint=f"sizes up to {MAX_RECORD_BYTES} bytes are accepted")
        if kind == "I" and not instructions:
            continue
        if addr + size > ADDRESS_LIMIT:
            raise ConfigError(f"line {lineno}: address {addr:#x} is not a user-space address",
                              file=file, line=lineno, field="trace")
        w = 1 if kind in ("S", "M") else 0
        # one record per cache line the access covers
        first, last = addr >> 6, (addr + size - 1) >> 6
        for ln in range(first, last + 1):
            addrs.append(max(addr, ln << 6))
            writes.append(w)
    if not seen_record:
        raise ConfigError("no lackey records found", file=file, field="trace",
                          hint="trace with: valgrind --tool=lackey --trace-mem=yes PROGRAM "
                               "2> trace.txt")
    n = len(addrs)
    if n == 0:
        raise ConfigError("the trace has only instruction fetches ('I' records), no data "
                          "accesses", file=file, field="trace",
                          hint="trace a program that loads or stores, or set "
                               "'instructions: true' to replay the fetches")
    return TraceData(np.full(n, cpu, dtype=np.int64), np.array(addrs, dtype=np.uint64),
                     np.array(writes, dtype=np.uint8), file)


def load_trace(path: str | os.PathLike, fmt: str = "auto", *, cpu: int = 0,
               instructions: bool = False) -> TraceData:
    """A trace from ``path``: ``npz`` (canonical), ``lackey`` text, or ``auto`` (by content)."""
    p = Path(path)
    if not p.exists():
        raise ConfigError("no such file", file=str(path), field="trace")
    if fmt == "auto":
        with open(p, "rb") as f:
            head = f.read(4)
        fmt = "npz" if head.startswith(b"PK") else "lackey"
    if fmt == "npz":
        return load_npz(p)
    if fmt == "lackey":
        try:
            with open(p, encoding="utf-8", errors="strict") as f:
                return parse_lackey(f, file=str(path), cpu=cpu, instructions=instructions)
        except UnicodeDecodeError:
            raise ConfigError("not a text file (lackey traces are text)", file=str(path),
                              field="trace") from None
    raise ConfigError(f"unknown trace format {fmt!r}", file=str(path), field="format",
                      hint="valid: auto, npz, lackey")


def trace_spans(address: np.ndarray, page_shift: int = 12) -> list[tuple[int, int]]:
    """Page spans [first vpn, end vpn) covering every address, bridging small gaps."""
    if address.size == 0:
        return []
    vpns = np.unique(address >> np.uint64(page_shift)).astype(np.int64)
    cuts = np.flatnonzero(np.diff(vpns) > SPAN_GAP_PAGES)
    starts = np.concatenate(([0], cuts + 1))
    ends = np.concatenate((cuts, [len(vpns) - 1]))
    return [(int(vpns[a]), int(vpns[b]) + 1) for a, b in zip(starts, ends, strict=True)]
