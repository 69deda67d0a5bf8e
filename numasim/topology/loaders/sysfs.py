"""A Linux ``/sys/devices/system/node`` tree read into a machine: a directory, a tarball, or
this machine.

Accepted inputs:

* a directory holding ``sys/devices/system/node/node*/`` (a copied ``/sys``, an extracted
  ``hwloc-gather-topology`` archive, with or without its top folder), or the ``node``
  directory itself;
* a tarball (``.tar``, ``.tar.gz``, ``.tar.bz2``, ``.tar.xz``) of such a tree, as
  ``hwloc-gather-topology`` makes.  It is read in memory and never extracted; members with an
  absolute path or a ``..`` component are refused;
* :func:`load_local`: this machine's ``/sys/devices/system/node``.

Per node ``nodeN`` (the kernel's ``drivers/base/node.c`` attributes):

* CPUs from ``cpulist``, else ``cpumap`` (hex words), else the ``cpuK`` links;
* memory = ``MemTotal`` of ``meminfo`` (``Node N MemTotal: X kB``), ``MemFree`` kept as
  ``free_bytes``;
* ``distance``: the node's SLIT row, one entry per *online* node in id order;
* HMAT performance: ``access1/initiators/`` (best CPU initiators; else ``access0``, best
  initiators of any kind) holds ``read_latency`` (ns) and ``read_bandwidth`` (MB/s) for the
  initiator nodes linked there.  Pairs the firmware did not describe are filled as
  :mod:`numasim.topology.loaders.initiators` explains;
* memory kind: a node backing a ``/sys/bus/dax`` device that sits under an NVDIMM bus
  (``ndbus``) is NVM, under a ``cxl`` device CXL (how hwloc tells them apart too); otherwise
  DRAM.  HMAT numbers alone do not say what the memory is made of.

Some trees pad files with NUL bytes (hwloc's test tarballs do); they are stripped.
"""

from __future__ import annotations

import bz2
import io
import lzma
import os
import posixpath
import re
import stat
import tarfile
import zlib
from pathlib import Path

from numasim.bitmap import MAX_NUMNODES, parse_list, parse_mask
from numasim.errors import ConfigError
from numasim.topology.build import make_machine
from numasim.topology.loaders._files import read_bytes, snippet
from numasim.topology.loaders.initiators import fill_matrix
from numasim.topology.model import Machine, MemKind, Node

NODE_DIR = "sys/devices/system/node"
MAX_MEMBER_BYTES = 1 << 20
MAX_TAR_BYTES = 256 << 20
HMAT_BW_MB_TO_GBPS = 1e-3
_NODE_RE = re.compile(r"node(\d+)")
_CPU_RE = re.compile(r"cpu(\d+)")
_MEMINFO = re.compile(r"Node\s+(\d{1,6})\s+(\w+):\s+(\d{1,19})\s*kB")


def sniff(head_text: str) -> bool:
    """A sysfs tree is a directory or a tarball, never a text file: always False."""
    return False


# ---------------------------------------------------------------------- trees
class _DirTree:
    """A tree on disk; paths are POSIX strings relative to ``root``.

    Links are followed only while they stay inside ``root`` (a copied sysfs tree links
    ``node0/cpu0`` to ``../../cpu/cpu0``); a link out of it (``node0/distance ->
    /etc/passwd``) is refused, never read.  Only regular files are opened, without
    blocking: a FIFO in the tree would otherwise wait forever for a writer."""

    def __init__(self, root: Path, file: str) -> None:
        self.root = root
        self.real = Path(os.path.realpath(root))
        self.file = file

    def _p(self, rel: str) -> Path:
        return self.root / rel if rel else self.root

    def _inside(self, rel: str) -> Path | None:
        """The real path of ``rel`` if it stays inside the tree, else None."""
        real = Path(os.path.realpath(self._p(rel)))
        return real if real == self.real or real.is_relative_to(self.real) else None

    def read(self, rel: str) -> str | None:
        if not os.path.lexists(self._p(rel)):
            return None
        real = self._inside(rel)
        if real is None:
            raise ConfigError("is a symbolic link that leads out of the tree; numasim does "
                              "not follow it", file=self.file, field=rel,
                              hint="copy the sysfs tree with the files themselves "
                                   "(cp -rL, or hwloc-gather-topology)")
        try:
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as e:
            raise ConfigError(f"cannot be opened: {e.strerror}", file=self.file,
                              field=rel) from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ConfigError("is not a regular file (a FIFO, socket, device or "
                                  "directory)", file=self.file, field=rel,
                                  hint="sysfs attributes are regular files")
            data = os.read(fd, MAX_MEMBER_BYTES)
        except OSError as e:
            raise ConfigError(f"cannot be read: {e.strerror}", file=self.file,
                              field=rel) from None
        finally:
            os.close(fd)
        return data.replace(b"\0", b"").decode("utf-8", errors="replace")

    def listdir(self, rel: str) -> list[str]:
        if self._inside(rel) is None:
            return []  # a directory link out of the tree: not even its names are read
        try:
            return sorted(os.listdir(self._p(rel)))
        except OSError:
            return []

    def readlink(self, rel: str) -> str | None:
        try:
            return os.readlink(self._p(rel))
        except OSError:
            return None


class _TarTree:
    """A tarball read once into memory (small files only); nothing touches the disk."""

    def __init__(self, path: Path) -> None:
        self.files: dict[str, bytes] = {}
        self.links: dict[str, str] = {}
        self.children: dict[str, set[str]] = {}
        total = 0
        file = str(path)
        raw = _decompress(path, file)
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:") as tf:
                for m in tf:
                    name = self._check(m.name, file)
                    if name is None:
                        continue
                    self._add_parents(name)
                    if m.issym():
                        self.links[name] = m.linkname
                    elif m.isreg() and m.size <= MAX_MEMBER_BYTES:
                        total += m.size
                        if total > MAX_TAR_BYTES:
                            raise ConfigError(
                                f"holds more than {MAX_TAR_BYTES >> 20} MiB of small files",
                                file=file, field="tarball",
                                hint="a sysfs node tree is a few MiB at most")
                        f = tf.extractfile(m)
                        if f is not None:
                            self.files[name] = f.read()
        except (tarfile.TarError, EOFError, OSError) as e:
            raise ConfigError(f"cannot read the tarball ({e})", file=file, field="tarball",
                              hint="the archive may be cut short or not a tar file") from None

    @staticmethod
    def _check(raw: str, file: str) -> str | None:
        if raw.startswith("/") or raw.startswith("\\"):
            raise ConfigError(f"member {raw!r} has an absolute path", file=file,
                              field="tarball member",
                              hint="a sysfs tarball holds relative paths (hwloc-gather-topology "
                                   "makes such archives)")
        parts = [p for p in raw.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise ConfigError(f"member {raw!r} climbs out of the archive with '..'", file=file,
                              field="tarball member")
        return "/".join(parts) or None

    def _add_parents(self, name: str) -> None:
        while name:
            parent, _, base = name.rpartition("/")
            kids = self.children.setdefault(parent, set())
            if base in kids:
                return  # the rest of the chain is known already
            kids.add(base)
            name = parent

    def read(self, rel: str) -> str | None:
        data = self.files.get(rel)
        if data is None:
            return None
        return data.replace(b"\0", b"").decode("utf-8", errors="replace")

    def listdir(self, rel: str) -> list[str]:
        return sorted(self.children.get(rel, ()))

    def readlink(self, rel: str) -> str | None:
        return self.links.get(rel)


_DECOMPRESSORS = ((b"BZh", bz2.BZ2Decompressor), (b"\x1f\x8b", lambda: zlib.decompressobj(31)),
                  (b"\xfd7zXZ", lzma.LZMADecompressor))


def _compressed(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return False
    return any(head.startswith(magic) for magic, _ in _DECOMPRESSORS)


def _decompress(path: Path, file: str) -> bytes:
    """The whole archive, uncompressed, in memory (random access into a bzip2 stream is
    slow; a sysfs archive is a few MiB).  Refuses archives that inflate past the limit."""
    data = read_bytes(path, what="a tarball of a sysfs tree")
    make = next((mk for magic, mk in _DECOMPRESSORS if data.startswith(magic)), None)
    if make is None:
        return data
    out = bytearray()
    try:
        while data:  # concatenated streams (pbzip2) follow one another
            d = make()
            out += d.decompress(data, MAX_TAR_BYTES + 1 - len(out))
            if len(out) > MAX_TAR_BYTES:
                raise ConfigError(f"inflates to more than {MAX_TAR_BYTES >> 20} MiB", file=file,
                                  field="tarball", hint="a sysfs node tree is a few MiB at most")
            if not d.eof:
                raise ConfigError("the compressed data ends early", file=file, field="tarball",
                                  hint="the file is cut short; copy it again")
            data = d.unused_data
    except (OSError, EOFError, ValueError, lzma.LZMAError, zlib.error) as e:
        raise ConfigError(f"cannot decompress the tarball ({e})", file=file, field="tarball",
                          hint="the file may be damaged") from None
    return bytes(out)


def _join(*parts: str) -> str:
    return "/".join(p for p in parts if p)


def _has_nodes(tree, rel: str) -> bool:
    return any(_NODE_RE.fullmatch(n) for n in tree.listdir(rel))


def _find_base(tree, tops: list[str]) -> str | None:
    """Where the ``nodeN`` directories are, trying the usual places under each top."""
    for top in tops:
        for cand in (_join(top, NODE_DIR), _join(top, "devices/system/node"),
                     _join(top, "system/node"), _join(top, "node"), top):
            if _has_nodes(tree, cand):
                return cand
    return None


# ---------------------------------------------------------------------- entry points
def load(path: str | os.PathLike) -> Machine:
    """Read a sysfs node tree from a directory or a tarball."""
    path = Path(path)
    file = str(path)
    if not path.exists():
        raise ConfigError("no such file or directory", file=file, field="path",
                          hint="give a directory holding sys/devices/system/node, or a "
                               "hwloc-gather-topology tarball")
    if path.is_dir():
        root = path.resolve()
        if root.parts[-3:] == ("devices", "system", "node"):
            # pointed at the node directory: read from the top of the tree, so that the
            # DAX devices that tell PMem and CXL memory apart are found too
            root = root.parents[2]
            root = root.parent if root.name == "sys" else root
        tree = _DirTree(root, file)
        path = root
        name = ""
        fmt = "sysfs directory"
    elif tarfile.is_tarfile(path) or _compressed(path):  # a cut archive gets a clear error
        tree = _TarTree(path)
        name = re.sub(r"\.(tar(\.\w+)?|tgz|tbz2?|txz)$", "", path.name)
        fmt = "sysfs tarball"
    else:
        raise ConfigError("neither a directory nor a tar archive", file=file, field="path",
                          hint="a sysfs tree is a directory or a tarball of one")
    tops = [""] + tree.listdir("")
    base = _find_base(tree, tops)
    if base is None:
        raise ConfigError("no node directories (nodeN) found", file=file, field=NODE_DIR,
                          hint="expected sys/devices/system/node/node0/... inside; "
                               "hwloc-gather-topology makes such trees")
    if not name:  # .../X/sys/devices/system/node -> X, as in an extracted hwloc-gather tree
        parts = list((path / base).resolve().parts)
        for tail in ("node", "system", "devices", "sys"):
            if len(parts) > 1 and parts[-1] == tail:
                parts.pop()
        name = parts[-1] if len(parts) > 1 else "sysfs"
    return _load_tree(tree, base, file=file, name=name, source=f"{file} ({fmt})")


def load_local() -> Machine:
    """This machine, from ``/sys/devices/system/node``."""
    root = Path("/")
    tree = _DirTree(root, "/")
    if not _has_nodes(tree, NODE_DIR):
        raise ConfigError("this machine has no /sys/devices/system/node/node* directories",
                          file="/" + NODE_DIR, field="local",
                          hint="a kernel without CONFIG_NUMA, or /sys is not mounted")
    return _load_tree(tree, NODE_DIR, file="/" + NODE_DIR, name="local",
                      source="/sys/devices/system/node (this machine)")


# ---------------------------------------------------------------------- parsing
_NODE_STATES = ("online", "has_memory", "has_normal_memory", "has_cpu")
"""Node lists the kernel keeps beside the nodeN directories (``possible`` may name nodes
that never appear, so it is not checked)."""


def _node_ids(tree, base: str, file: str, notes: list[str]) -> list[int]:
    """The online node ids; a node that ``online``, ``has_memory`` or ``has_cpu`` lists but
    whose directory is missing is an error (the tree was copied incompletely)."""
    ids = sorted(int(m.group(1)) for n in tree.listdir(base)
                 if (m := _NODE_RE.fullmatch(n)) and len(m.group(1)) < 6)
    listed: dict[str, list[int]] = {}
    for state in _NODE_STATES:
        text = tree.read(_join(base, state))
        if text is None or not text.strip():
            continue
        try:
            listed[state] = parse_list(text, MAX_NUMNODES, "node")
        except ValueError as e:
            raise ConfigError(f"cannot read {snippet(text)} as a node list: {e}", file=file,
                              field=_join(base, state), hint="like 0-3 or 0,2") from None
    for state, nids in listed.items():
        missing = sorted(set(nids) - set(ids))
        if missing:
            raise ConfigError(
                f"lists node {missing[0]}, but there is no node{missing[0]} directory"
                + (f" (nor for {', '.join(map(str, missing[1:6]))})" if missing[1:] else ""),
                file=file, field=_join(base, state),
                hint="the tree was copied incompletely; copy the whole "
                     "sys/devices/system/node directory again")
    bad = [i for i in ids if i >= MAX_NUMNODES]
    if bad:
        raise ConfigError(f"node{bad[0]} is not below MAX_NUMNODES ({MAX_NUMNODES}), the most "
                          "nodes Linux supports", file=file, field=_join(base, f"node{bad[0]}"))
    if "online" in listed:
        offline = sorted(set(ids) - set(listed["online"]))
        if offline:
            notes.append(f"node directories {offline} are not online; left out")
        ids = [i for i in ids if i in listed["online"]]
    return ids


def _load_tree(tree, base: str, *, file: str, name: str, source: str) -> Machine:
    notes: list[str] = []
    ids = _node_ids(tree, base, file, notes)
    online = ids

    nodes: list[Node] = []
    rows: dict[int, list[int] | None] = {}
    for nid in ids:
        nd = _join(base, f"node{nid}")
        cpus = _cpus(tree, nd, nid, file)
        mem, free = _meminfo(tree, nd, nid, file)
        nodes.append(Node(id=nid, cpus=tuple(cpus), mem_bytes=mem, free_bytes=free))
        text = tree.read(_join(nd, "distance"))
        if text is None or not text.split():
            rows[nid] = None
            continue
        try:
            rows[nid] = [int(t) for t in text.split()]
        except ValueError:
            raise ConfigError(f"cannot read {snippet(text)} as distances", file=file,
                              field=_join(nd, "distance")) from None

    kinds = _dax_kinds(tree, base, notes)
    nodes = [Node(id=n.id, cpus=n.cpus, mem_bytes=n.mem_bytes, free_bytes=n.free_bytes,
                  kind=kinds.get(n.id, MemKind.DRAM)) for n in nodes]
    bare = [n.id for n in nodes if not n.cpus and not n.mem_bytes]
    if bare:
        notes.append(f"node(s) {', '.join(map(str, bare))} have neither CPUs nor memory "
                     "(generic initiators, or CPUs offline)")

    distance = _distance(rows, ids, online, base, file, notes)
    pos = {nid: i for i, nid in enumerate(ids)}
    lat_known, bw_known, hmat_from = _hmat(tree, base, ids, pos)
    if hmat_from:
        notes.append("HMAT from " + ", ".join(f"node{t}/{acc}" for t, acc in
                                             sorted(hmat_from.items())))
    latency, note = fill_matrix(lat_known, nodes, distance, quantity="latency",
                                source="sysfs HMAT read_latency")
    if note:
        notes.append(note)
    bandwidth, note = fill_matrix(bw_known, nodes, distance, quantity="bandwidth",
                                  source="sysfs HMAT read_bandwidth")
    if note:
        notes.append(note)
    return make_machine(name, nodes, distance=distance, latency_ns=latency,
                        bandwidth_GBps=bandwidth, file=file, source=source, notes=notes)


def _cpus(tree, nd: str, nid: int, file: str) -> list[int]:
    text = tree.read(_join(nd, "cpulist"))
    if text is not None:
        try:
            return parse_list(text, what="CPU")
        except ValueError as e:
            raise ConfigError(f"cannot read {snippet(text)} as a CPU list: {e}", file=file,
                              field=_join(nd, "cpulist"), hint="like 0-3,8-11") from None
    text = tree.read(_join(nd, "cpumap"))
    if text is not None:
        try:
            return parse_mask(text, what="CPU")
        except ValueError as e:
            raise ConfigError(f"cannot read {snippet(text)} as a CPU mask: {e}", file=file,
                              field=_join(nd, "cpumap"), hint="like 00000000,000000ff") from None
    links = [int(m.group(1)) for n in tree.listdir(nd)
             if (m := _CPU_RE.fullmatch(n)) and len(m.group(1)) < 6]
    if links or tree.listdir(nd):
        return sorted(links)
    raise ConfigError(f"node{nid} has no cpulist, cpumap or cpuN entries", file=file,
                      field=_join(nd, "cpulist"))


def _meminfo(tree, nd: str, nid: int, file: str) -> tuple[int, int | None]:
    text = tree.read(_join(nd, "meminfo"))
    fld = _join(nd, "meminfo")
    if text is None:
        raise ConfigError(f"node{nid} has no meminfo", file=file, field=fld,
                          hint="the kernel writes 'Node N MemTotal: X kB' there")
    values = {}
    for m in _MEMINFO.finditer(text):
        if int(m.group(1)) != nid:
            raise ConfigError(f"meminfo of node{nid} speaks of node {m.group(1)}", file=file,
                              field=fld)
        values[m.group(2)] = int(m.group(3)) * 1024
    if "MemTotal" not in values:
        raise ConfigError(f"no 'Node {nid} MemTotal: X kB' line", file=file, field=fld)
    return values["MemTotal"], values.get("MemFree")


def _distance(rows: dict[int, list[int] | None], ids: list[int], online: list[int],
              base: str, file: str, notes: list[str]) -> list[list[int]] | None:
    if all(r is None for r in rows.values()):
        notes.append("no distance files")
        return None
    missing = [nid for nid, r in rows.items() if r is None]
    if missing:
        raise ConfigError(f"node{missing[0]} has no distance row while others have",
                          file=file, field=_join(base, f"node{missing[0]}", "distance"))
    width = {len(r) for r in rows.values() if r is not None}
    columns = online if len(online) in width and len(width) == 1 else ids
    out = []
    for nid in ids:
        r = rows[nid]
        if r is None or len(r) != len(columns):
            raise ConfigError(f"node{nid}'s distance row has {len(r or [])} entries; there are "
                              f"{len(columns)} online nodes", file=file,
                              field=_join(base, f"node{nid}", "distance"),
                              hint="one entry per online node, in id order")
        by_id = dict(zip(columns, r, strict=True))
        out.append([by_id[j] for j in ids])
    return out


def _hmat(tree, base: str, ids: list[int], pos: dict[int, int]):
    """``(latency, bandwidth, where)`` known entries from ``nodeT/access{1,0}/initiators``."""
    lat: dict[tuple[int, int], float] = {}
    bw: dict[tuple[int, int], float] = {}
    where: dict[int, str] = {}
    for t in ids:
        for acc in ("access1", "access0"):
            d = _join(base, f"node{t}", acc, "initiators")
            inits = [int(m.group(1)) for n in tree.listdir(d) if (m := _NODE_RE.fullmatch(n))]
            inits = [i for i in inits if i in pos]
            if not inits:
                continue
            rl = _int(tree.read(_join(d, "read_latency")))
            rb = _int(tree.read(_join(d, "read_bandwidth")))
            if not rl and not rb:
                continue
            for i in inits:
                if rl:
                    lat[(pos[i], pos[t])] = float(rl)
                if rb:
                    bw[(pos[i], pos[t])] = rb * HMAT_BW_MB_TO_GBPS
            where[t] = acc
            break
    return lat, bw, where


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _dax_kinds(tree, base: str, notes: list[str]) -> dict[int, MemKind]:
    """Memory kinds of nodes that back DAX devices (kmem-onlined PMem or CXL memory)."""
    sysroot = base[: -len("devices/system/node")].rstrip("/") if base.endswith(
        "devices/system/node") else None
    if sysroot is None:
        return {}
    devices = _join(sysroot, "bus/dax/devices")
    out: dict[int, MemKind] = {}
    for dev in tree.listdir(devices):
        link = tree.readlink(_join(devices, dev))
        if link is None or link.startswith("/"):
            continue  # sysfs links are relative; anything else is not followed
        target = posixpath.normpath(posixpath.join(devices, link))
        if target.startswith(".."):
            continue
        node = _int(tree.read(_join(target, "target_node")))
        if node is None or node < 0:
            continue
        low = target.lower()
        if "/ndbus" in low:
            out[node] = MemKind.NVM
        elif "cxl" in low or "acpi0017" in low:  # ACPI0017: the CXL root device
            out[node] = MemKind.CXL
    if out:
        notes.append("memory kinds from DAX devices: " + ", ".join(
            f"node {n} {k.value}" for n, k in sorted(out.items())))
    return out
