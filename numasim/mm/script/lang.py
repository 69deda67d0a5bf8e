"""The scenario language of the oracle's probe (``numaprobe``), parsed and checked.

One command per line; ``#`` starts a comment (so ``#@ layout NAME`` is a comment that names
the machine); words are separated by blanks.  :func:`parse_script` turns a script into
:class:`Line` objects and checks every line before anything runs, so a typo stops the run
with a :class:`~numasim.errors.ScriptError` naming the file, the line and what would be valid,
instead of half a scenario.

Numbers follow the probe's C library calls: ``strtol``/``strtoul`` with base 0 (``0x10`` is
hex, ``010`` is octal, and ``strtoul("-1")`` is the largest unsigned long).  The command
table, :data:`COMMANDS`, is the README's table of the oracle plus numasim's ``explain`` and
``swapout``.  The oracle's ``#@ swap SIZE`` header (its guest gets a brd swap device of that
size) gives the boot a swap device of that size, which reclaim (numasim.mm.vmscan) may write
to; ``swapout`` (MADV_PAGEOUT) works with or without it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from numasim.errors import ScriptError, did_you_mean
from numasim.mm.script import balance_cmds

ULONG = (1 << 64) - 1
LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1

MODE_NAMES = ("default", "preferred", "bind", "interleave", "local", "preferred_many",
              "weighted_interleave")
MODE_ALIASES = {"prefer": 1, "pref": 1, "membind": 2, "weighted": 6}

MASK_BITS = 1024  # the probe's nodemask buffer for migrate / get_mempolicy
BIG_MASK_BITS = 32768 + 128  # the probe's buffer for set_mempolicy / mbind
DEFAULT_MAXNODE = MASK_BITS + 1
MADVISE_USAGE = "madvise OFF N hugepage|nohugepage|pageout|cold"


# ------------------------------------------------------------------ C numbers
def c_strtol(text: str, base: int = 0) -> tuple[int | None, str]:
    """``strtol``: (value, unparsed rest); value None when no digits were read."""
    m = re.match(r"\s*([+-]?)(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)" if base == 0
                 else r"\s*([+-]?)([0-9]+)", text)
    if not m:
        return None, text
    sign, digits = m.group(1), m.group(2)
    if base == 0:
        if digits[:2].lower() == "0x":
            v = int(digits[2:], 16)
        elif digits.startswith("0"):
            v = int(digits, 8)
        else:
            v = int(digits)
    else:
        v = int(digits, base)
    if sign == "-":
        v = -v
    return v, text[m.end():]


def to_long(v: int) -> int:
    """Saturate as strtol does."""
    return max(LONG_MIN, min(LONG_MAX, v))


def to_ulong(v: int) -> int:
    """``strtoul``'s answer: a negative number wraps around (``-1`` = ULONG_MAX)."""
    if v > ULONG:
        return ULONG
    return v & ULONG


def to_int(v: int) -> int:
    """A C ``(int)`` cast."""
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


# ------------------------------------------------------------------ values
@dataclass(frozen=True)
class Addr:
    """An address argument: absolute, or ``+BYTES`` from the current region's start."""

    value: int
    relative: bool = False


@dataclass(frozen=True)
class MaskArg:
    """A nodemask argument: a set of bits, or a NULL pointer."""

    bits: frozenset[int] = frozenset()
    null: bool = False


@dataclass
class PolicyArgs:
    """``parse_polargs``: MODE [NODES|null|none] [static] [relative] [balancing] [strict]
    [move] [move_all] [maxnode=N] [maskaddr=ADDR] [mflags=N]."""

    mode: int
    mask: MaskArg = field(default_factory=lambda: MaskArg(null=True))
    maxnode: int = DEFAULT_MAXNODE
    maxnode_set: bool = False
    mbind_flags: int = 0
    maskaddr: Addr | None = None
    mflags: int | None = None

    @property
    def effective_maxnode(self) -> int:
        if self.mask.null and self.maskaddr is None and not self.maxnode_set:
            return 0
        return self.maxnode

    @property
    def flags(self) -> int:
        return self.mflags if self.mflags is not None else self.mbind_flags


@dataclass
class Line:
    """One command of a script: where it is, its words, and its parsed arguments."""

    number: int
    words: list[str]
    rest: str = ""  # text after the first word (for `exec`)
    args: dict = field(default_factory=dict)
    sub: list[Line] = field(default_factory=list)  # exec: the commands it runs

    @property
    def cmd(self) -> str:
        return self.words[0]

    @property
    def echo(self) -> str:
        return "> " + " ".join(self.words)


# ------------------------------------------------------------------ the parser
class _Ctx:
    def __init__(self, file: str | None, number: int, words: list[str]) -> None:
        self.file, self.number, self.words = file, number, words

    def fail(self, message: str, hint: str) -> ScriptError:
        return ScriptError(f"{message} in `{' '.join(self.words)}`", file=self.file,
                           line=self.number, hint=hint)

    def num(self, text: str, what: str) -> int:
        v, rest = c_strtol(text)
        if v is None or rest:
            raise self.fail(f"{what} {text!r} is not a number",
                            "a C integer: 12, -1, 0x40000000 or 010 (octal)")
        return to_long(v)

    def unum(self, text: str, what: str) -> int:
        v, rest = c_strtol(text)
        if v is None or rest:
            raise self.fail(f"{what} {text!r} is not a number",
                            "a C integer: 12, 0x40000000, -1 (= the largest unsigned long)")
        return to_ulong(v)

    def addr(self, text: str, what: str) -> Addr:
        if text.startswith("+"):
            v, rest = c_strtol(text[1:])
            if v is None or rest or text[1:2] in ("+", "-"):
                raise self.fail(f"{what} {text!r} is not an address",
                                "an absolute address (0x50000000, -1) or +BYTES from the "
                                "current region's start (+0, +4096)")
            return Addr(to_ulong(v), True)
        return Addr(self.unum(text, what))

    def mask(self, text: str, bits: int, what: str = "nodemask") -> MaskArg | None:
        """A node list (``0-2,5``), ``none``/``empty`` (empty mask); None if not a list."""
        if text in ("none", "empty"):
            return MaskArg()
        out: set[int] = set()
        pos = 0
        while pos < len(text):
            m = re.match(r"(\d+)(?:-(\d+))?(,|$)", text[pos:])
            if not m:
                return None
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) is not None else a
            if a >= bits or b < a or b >= bits:
                raise self.fail(f"{what} {text!r} has a node outside 0-{bits - 1} or a "
                                "backwards range", f"node numbers 0-{bits - 1}, like 0-2,5")
            out.update(range(a, b + 1))
            pos += m.end()
        return MaskArg(frozenset(out))

    def mode(self, text: str) -> int:
        if text in MODE_NAMES:
            return MODE_NAMES.index(text)
        if text in MODE_ALIASES:
            return MODE_ALIASES[text]
        v, rest = c_strtol(text)
        if v is not None and not rest and text:
            return to_int(v)
        raise self.fail(f"unknown policy mode {text!r}",
                        "a mode name (" + ", ".join(MODE_NAMES) + ") or a number")

    def polargs(self, words: list[str]) -> PolicyArgs:
        if not words:
            raise self.fail("missing policy mode", "MODE [NODES] [static] [relative] ...")
        pa = PolicyArgs(self.mode(words[0]))
        for w in words[1:]:
            if w == "static":
                pa.mode |= 1 << 15
            elif w == "relative":
                pa.mode |= 1 << 14
            elif w == "balancing":
                pa.mode |= 1 << 13
            elif w == "strict":
                pa.mbind_flags |= 1
            elif w == "move":
                pa.mbind_flags |= 2
            elif w == "move_all":
                pa.mbind_flags |= 4
            elif w.startswith("maxnode="):
                pa.maxnode = self.unum(w[8:], "maxnode")
                pa.maxnode_set = True
            elif w.startswith("maskaddr="):
                pa.maskaddr = self.addr(w[9:], "maskaddr")
            elif w.startswith("mflags="):
                pa.mflags = self.unum(w[7:], "mflags")
            elif w in ("null", "-"):
                pa.mask = MaskArg(null=True)
            else:
                m = self.mask(w, BIG_MASK_BITS)
                if m is None:
                    raise self.fail(f"bad policy argument {w!r}",
                                    "NODES (0-2,5 | none | null), static, relative, balancing, "
                                    "strict, move, move_all, maxnode=N, maskaddr=ADDR, mflags=N")
                pa.mask = m
        return pa


def _need(ctx: _Ctx, n: int, usage: str) -> None:
    if len(ctx.words) < n:
        raise ctx.fail("missing arguments", f"usage: {usage}")


def _opts(ctx: _Ctx, words: list[str], allowed: dict[str, str], usage: str) -> dict[str, str]:
    """``key=value`` and bare-word options; unknown ones are an error."""
    out: dict[str, str] = {}
    for w in words:
        key, eq, val = w.partition("=")
        if key in allowed and (bool(eq) == (allowed[key] == "=")):
            out[key] = val if eq else ""
        else:
            raise ctx.fail(f"unknown option {w!r}", f"usage: {usage}")
    return out


def _parse_mmap(ctx: _Ctx, a: dict) -> None:
    usage = "mmap N [anon|shared|memfd|file=PATH] [at=ADDR] [name=X] [private] [keep]"
    _need(ctx, 2, usage)
    a["n"] = ctx.num(ctx.words[1], "page count")
    a["kind"], a["path"], a["at"], a["name"] = "anon", None, 0, None
    a["private"] = a["keep"] = False
    for w in ctx.words[2:]:
        if w in ("anon", "shared", "memfd"):
            a["kind"] = w
        elif w.startswith("file="):
            a["kind"], a["path"] = "file", w[5:]
        elif w.startswith("at="):
            a["at"] = ctx.unum(w[3:], "address")
        elif w.startswith("name="):
            a["name"] = w[5:][:31]
        elif w == "private":
            a["private"] = True
        elif w == "keep":
            a["keep"] = True
        else:
            raise ctx.fail(f"unknown mmap option {w!r}", f"usage: {usage}")


def _parse_get_mempolicy(ctx: _Ctx, a: dict) -> None:
    usage = ("get_mempolicy [addr=OFF] [rawaddr=ADDR] [node] [mems_allowed] [maxnode=N] "
             "[nomask] [flags=N]")
    flags, off, raw, maxnode, nomask = 0, None, None, DEFAULT_MAXNODE, False
    w = ctx.words
    i = 1
    while i < len(w):
        t = w[i]
        if t.startswith("addr="):
            off = ctx.num(t[5:], "page offset")
            flags |= 2
        elif t.startswith("rawaddr="):
            raw = ctx.addr(t[8:], "rawaddr")
            flags |= 2
        elif t == "addr" and i + 1 < len(w):
            i += 1
            off = ctx.num(w[i], "page offset")
            flags |= 2
        elif t == "node":
            flags |= 1
        elif t == "mems_allowed":
            flags |= 4
        elif t.startswith("maxnode="):
            maxnode = ctx.unum(t[8:], "maxnode")
        elif t == "nomask":
            nomask = True
        elif t.startswith("flags="):
            flags = to_int(ctx.num(t[6:], "flags"))
        else:
            raise ctx.fail(f"unknown get_mempolicy option {t!r}", f"usage: {usage}")
        i += 1
    a.update(flags=flags, off=off, raw=raw, maxnode=maxnode, nomask=nomask)


def _parse_pid(ctx: _Ctx, text: str):
    if text in ("parent", "self"):
        return text
    return to_int(ctx.num(text, "pid"))


def _parse_line(ctx: _Ctx, line: Line) -> None:
    w = ctx.words
    c = w[0]
    a = line.args
    if c in ("fork", "endfork", "getcpu", "munmap", "numa_maps", "numastat", "numastat_mark",
             "numastat_delta", "meminfo", "zones", "vmas", "exit", "echo"):
        if c not in ("echo",) and len(w) > 1:
            raise ctx.fail(f"`{c}` takes no arguments", f"usage: {c}")
        return
    if c == "exec":
        return  # the sub-script is parsed by the caller
    if c == "mmap":
        _parse_mmap(ctx, a)
    elif c in ("region", "cpu", "headroom", "setuid", "sleep"):
        _need(ctx, 2, f"{c} N")
        a["n"] = ctx.num(w[1], {"region": "region id", "cpu": "CPU", "headroom": "node",
                                "setuid": "uid", "sleep": "milliseconds"}[c])
        if len(w) > 2:
            raise ctx.fail("too many arguments", f"usage: {c} N")
    elif c == "set_mempolicy":
        a["pol"] = ctx.polargs(w[1:])
    elif c in ("mbind", "mbind_raw"):
        usage = (f"{c} {'OFF N' if c == 'mbind' else 'ADDR LEN'} MODE [NODES] [static] "
                 "[relative] [balancing] [strict] [move] [move_all] [maxnode=N] "
                 "[maskaddr=ADDR] [mflags=N]")
        _need(ctx, 4, usage)
        if c == "mbind":
            a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        else:
            a["addr"], a["len"] = ctx.addr(w[1], "address"), ctx.unum(w[2], "length")
        a["pol"] = ctx.polargs(w[3:])
    elif c in ("home_node", "home_node_raw"):
        usage = f"{c} {'OFF N' if c == 'home_node' else 'ADDR LEN'} NODE [flags=F]"
        _need(ctx, 4, usage)
        if c == "home_node":
            a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        else:
            a["addr"], a["len"] = ctx.addr(w[1], "address"), ctx.unum(w[2], "length")
        a["node"] = ctx.num(w[3], "node")
        o = _opts(ctx, w[4:], {"flags": "="}, usage)
        a["flags"] = ctx.unum(o["flags"], "flags") if "flags" in o else 0
    elif c in ("touch", "query", "verify"):
        usage = {"touch": "touch [OFF [N [read|resident|write]]]",
                 "query": "query [OFF [N [brief|counts]]]", "verify": "verify [OFF [N]]"}[c]
        a["off"] = ctx.num(w[1], "page offset") if len(w) > 1 else 0
        a["n"] = ctx.num(w[2], "page count") if len(w) > 2 else None
        a["how"] = w[3] if len(w) > 3 else ""
        ok = {"touch": ("read", "resident", "write", ""), "query": ("brief", "counts", ""),
              "verify": ("",)}[c]
        if a["how"] not in ok or len(w) > 4:
            raise ctx.fail(f"unknown {c} mode {a['how']!r}", f"usage: {usage}")
    elif c in ("pwrite", "unmap", "swapout"):
        _need(ctx, 3, f"{c} OFF N")
        a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        if len(w) > 3:
            raise ctx.fail("too many arguments", f"usage: {c} OFF N")
    elif c == "nodeof":
        _need(ctx, 2, "nodeof OFF [N]")
        a["off"] = ctx.num(w[1], "page offset")
        a["n"] = ctx.num(w[2], "page count") if len(w) > 2 else 1
    elif c == "explain":
        _need(ctx, 2, "explain OFF")
        a["off"] = ctx.num(w[1], "page offset")
    elif c == "move":
        usage = "move OFF N NODE [move_all] [pid=P] [flags=F]"
        _need(ctx, 4, usage)
        a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        a["node"] = to_int(ctx.num(w[3], "node"))
        o = _opts(ctx, w[4:], {"move_all": "", "pid": "=", "flags": "="}, usage)
        fl = 2
        for t in w[4:]:  # in order, as the probe applies them
            if t == "move_all":
                fl = 4
            elif t.startswith("flags="):
                fl = to_int(ctx.num(t[6:], "flags"))
        a["flags"] = fl
        a["pid"] = _parse_pid(ctx, o["pid"]) if "pid" in o else 0
    elif c == "migrate":
        usage = "migrate FROM TO [pid=P] [maxnode=N] [old=ADDR] [new=ADDR]"
        _need(ctx, 3, usage)
        frm, to = ctx.mask(w[1], MASK_BITS), ctx.mask(w[2], MASK_BITS)
        if frm is None or to is None:
            raise ctx.fail("FROM and TO must be node lists", f"usage: {usage}")
        a["from"], a["to"] = frm, to
        o = _opts(ctx, w[3:], {"pid": "=", "maxnode": "=", "old": "=", "new": "="}, usage)
        a["pid"] = _parse_pid(ctx, o["pid"]) if "pid" in o else 0
        a["maxnode"] = ctx.unum(o["maxnode"], "maxnode") if "maxnode" in o else DEFAULT_MAXNODE
        a["old"] = ctx.addr(o["old"], "old") if "old" in o else None
        a["new"] = ctx.addr(o["new"], "new") if "new" in o else None
    elif c == "get_mempolicy":
        _parse_get_mempolicy(ctx, a)
    elif c == "fill":
        usage = "fill NODE K [verbose] [zone=NAME]"
        _need(ctx, 3, usage)
        a["node"], a["left"] = ctx.num(w[1], "node"), ctx.num(w[2], "pages")
        o = _opts(ctx, w[3:], {"verbose": "", "zone": "="}, usage)
        a["verbose"], a["zone"] = "verbose" in o, o.get("zone")
    elif c == "cat":
        _need(ctx, 2, "cat PATH")
        a["path"] = w[1]
    elif c == "write":
        _need(ctx, 3, "write PATH VALUE")
        a["path"], a["value"] = w[1], w[2]
    elif c in ("mkdir", "rmdir", "unlink", "umount"):
        _need(ctx, 2, f"{c} PATH")
        a["path"] = w[1]
    elif c == "mount":
        _need(ctx, 3, "mount FSTYPE TARGET [DATA]")
        a["fstype"], a["target"] = w[1], w[2]
        a["data"] = w[3] if len(w) > 3 else None
    elif c == "dmesg":
        _need(ctx, 2, "dmesg PATTERN [upto=S]")
        a["pattern"] = w[1]
        a["upto"] = None
        for t in w[2:]:
            if t.startswith("upto="):
                a["upto"] = t[5:]
            else:
                raise ctx.fail(f"unknown dmesg option {t!r}", "usage: dmesg PATTERN [upto=S]")
    elif c == "mprotect":
        _need(ctx, 4, "mprotect OFF N none|r|rw")
        a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        if w[3] not in ("none", "r", "rw"):
            raise ctx.fail(f"unknown protection {w[3]!r}", "usage: mprotect OFF N none|r|rw")
        a["prot"] = w[3]
    elif c == "madvise":
        _need(ctx, 4, MADVISE_USAGE)
        a["off"], a["n"] = ctx.num(w[1], "page offset"), ctx.num(w[2], "page count")
        if w[3] not in ("hugepage", "nohugepage", "pageout", "cold"):
            raise ctx.fail(f"unknown madvise advice {w[3]!r}", "usage: " + MADVISE_USAGE)
        a["advice"] = w[3]
    elif c in balance_cmds.COMMANDS:  # spin, vmstat*: pages that move in time
        balance_cmds.parse(ctx, line)
    else:
        raise ctx.fail(f"unknown command {c!r}", did_you_mean(c, COMMANDS))


COMMANDS = ("mmap", "region", "munmap", "set_mempolicy", "mbind", "mbind_raw", "home_node",
            "home_node_raw", "touch", "pwrite", "query", "nodeof", "get_mempolicy", "move",
            "migrate", "cpu", "getcpu", "numastat", "numastat_mark", "numastat_delta",
            "meminfo", "zones", "headroom", "fill", "write", "cat", "sleep", "echo", "exit",
            "fork", "endfork", "exec", "setuid", "mkdir", "rmdir", "unlink", "mount", "umount",
            "mprotect", "unmap", "vmas", "verify", "dmesg", "numa_maps", "explain", "swapout",
            "madvise", *balance_cmds.COMMANDS)


def strip_comment(raw: str) -> str:
    return raw.split("#", 1)[0]


def parse_line(raw: str, number: int, file: str | None = None) -> Line | None:
    """One script line as the probe reads it (None for blank and comment lines)."""
    text = strip_comment(raw)
    words = text.split()
    if not words:
        return None
    rest = text.strip()[len(words[0]):].strip()
    line = Line(number, words, rest)
    ctx = _Ctx(file, number, words)
    _parse_line(ctx, line)
    if words[0] == "exec":
        subs = [parse_line(part, number, file) for part in rest.split(";")]
        line.sub = [s for s in subs if s is not None]
    return line


MAX_FORK_DEPTH = 100  # nested fork blocks a script may hold (each child runs inside its parent)


def parse_script(text: str, file: str | None = None) -> list[Line]:
    """Every command line of a script, checked (raises ScriptError on the first bad one)."""
    out = []
    depth = 0
    for i, raw in enumerate(text.split("\n"), start=1):
        line = parse_line(raw, i, file)
        if line is not None:
            out.append(line)
            depth += line.cmd == "fork"
            depth -= line.cmd == "endfork" and depth > 0
            if depth > MAX_FORK_DEPTH:
                raise ScriptError(f"forks nested more than {MAX_FORK_DEPTH} deep", file=file,
                                  line=i, field="fork", hint="numasim runs each child inside "
                                  "its parent; close a fork with endfork before the next")
    return out


def inline_script(cmds: str) -> str:
    """``-e 'cmd; cmd'`` -> script text, as the oracle's ``-e`` builds it."""
    return "\n".join(c.strip() for c in cmds.split(";")) + "\n"


def script_layout(text: str) -> str | None:
    """The ``#@ layout NAME`` a scenario names, if any."""
    for raw in text.split("\n"):
        m = re.match(r"#@\s*layout\s+(\S+)", raw)
        if m:
            return m.group(1)
    return None


def script_append(text: str) -> str:
    """The kernel command line a scenario's ``#@ append ARGS`` lines add (the oracle's
    ``--append`` it was recorded with), joined; "" if none."""
    out = []
    for raw in text.split("\n"):
        m = re.match(r"#@\s*append\s+(.+)", raw)
        if m:
            out.append(m.group(1).strip())
    return " ".join(out)


def swap_size_pages(value: str, file: str | None = None, field: str = "#@ swap") -> int:
    """A swap size (64M, 65536K, 1G; a bare number is MiB, as the oracle reads it) in
    4 KiB pages."""
    from numasim.errors import ScriptError

    v = re.fullmatch(r"(\d{1,12})([KMG]?)", value.strip().upper())
    if not v:
        raise ScriptError(f"bad swap size {value!r}", file=file, field=field,
                          hint="a size like 64M, 65536K or 1G (a bare number is MiB)")
    kib = int(v.group(1)) * {"K": 1, "": 1024, "M": 1024, "G": 1 << 20}[v.group(2)]
    return kib // 4


def script_swap(text: str, file: str | None = None) -> int:
    """Pages of swap the scenario's ``#@ swap SIZE`` line gives the boot (the oracle's brd
    ramdisk), 0 if none."""
    pages = 0
    for raw in text.split("\n"):
        m = re.match(r"#@\s*swap\s+(\S+)", raw)
        if m:
            pages = swap_size_pages(m.group(1), file)
    return pages


def boot_thp_mode(append: str) -> str | None:
    """``transparent_hugepage=MODE`` on a kernel command line, or None."""
    mode = None
    for arg in append.split():
        if arg.startswith("transparent_hugepage="):
            mode = arg.split("=", 1)[1]
    return mode


def matching_endfork(lines: list[Line], i: int) -> int:
    """Index of the ``endfork`` closing the ``fork`` at ``lines[i]`` (len(lines) if none)."""
    depth = 1
    j = i
    while depth > 0 and j + 1 < len(lines):
        j += 1
        if lines[j].cmd == "fork":
            depth += 1
        elif lines[j].cmd == "endfork":
            depth -= 1
    return j if depth == 0 else len(lines)
