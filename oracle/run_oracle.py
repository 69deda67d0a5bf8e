#!/usr/bin/env python3
"""Boot a real Linux kernel under QEMU (TCG) with a fake NUMA layout, run
numaprobe scenario scripts inside it and print where every page landed.

  ./run_oracle.py [--layout L] [--kernel K] [--info] [--text|--json] SCENARIO...
  ./run_oracle.py --parse expected_x.txt         (no boot: text -> JSON)

All scenarios given on one command line run in ONE boot, each in a fresh
process, in the order given.  Use --separate to boot once per scenario.
See README.md.
"""
import argparse
import glob
import hashlib
import gzip
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("ORACLE_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "numa-oracle")
BEGIN, END = "@@ORACLE-BEGIN", "@@ORACLE-END"

DEFAULT_APPEND = ("console=ttyS0 panic=-1 quiet loglevel=4 "
                  "numa_balancing=disable transparent_hugepage=never norandmaps "
                  "mitigations=off tsc=reliable no_timer_check nokaslr")


# ------------------------------------------------------------------ layout
def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMGkmg]?)", s)
    if not m:
        raise SystemExit(f"bad size {s!r}")
    mult = {"": 1 << 20, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]
    return int(m.group(1)) * mult


def parse_cpus(s):
    if s in ("-", "none", ""):
        return []
    out = []
    for part in s.split(","):
        if "-" in part:
            a, b = part.split("-")
            out += list(range(int(a), int(b) + 1))
        else:
            out.append(int(part))
    return out


def read_layout(path):
    nodes, dist, append, qemu = [], [], [], []
    for raw in open(path):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        w = line.split()
        if w[0] == "node":
            kv = dict(x.split("=", 1) for x in w[2:])
            nodes.append({"id": int(w[1]), "mem": parse_size(kv.get("mem", "0")),
                          "cpus": parse_cpus(kv.get("cpus", "-")),
                          "initiator": kv.get("initiator")})
        elif w[0] == "dist":
            dist.append([int(x) for x in w[1:]])
        elif w[0] == "append":
            append.append(line.split(None, 1)[1])
        elif w[0] == "qemu":
            qemu += line.split()[1:]
        else:
            raise SystemExit(f"{path}: unknown layout line {raw!r}")
    nodes.sort(key=lambda n: n["id"])
    if dist and (len(dist) != len(nodes) or any(len(r) != len(nodes) for r in dist)):
        raise SystemExit(f"{path}: dist must be a {len(nodes)}x{len(nodes)} matrix")
    return {"nodes": nodes, "dist": dist, "append": " ".join(append), "qemu": qemu}


def qemu_numa_args(layout):
    args = []
    ncpu = max([c for n in layout["nodes"] for c in n["cpus"]] + [0]) + 1
    total = sum(n["mem"] for n in layout["nodes"])
    args += ["-m", f"{total // (1 << 20)}M", "-smp", str(ncpu)]
    for n in layout["nodes"]:
        a = f"node,nodeid={n['id']}"
        for c in n["cpus"]:
            a += f",cpus={c}"
        if n["mem"]:
            args += ["-object", f"memory-backend-ram,id=m{n['id']},size={n['mem'] // (1 << 20)}M"]
            a += f",memdev=m{n['id']}"
        if n.get("initiator") is not None:   # needed by QEMU's HMAT for CPU-less nodes
            a += f",initiator={n['initiator']}"
        args += ["-numa", a]
    for i, row in enumerate(layout["dist"]):
        for j, v in enumerate(row):
            if i != j:
                args += ["-numa", f"dist,src={layout['nodes'][i]['id']},dst={layout['nodes'][j]['id']},val={v}"]
    return args


# ------------------------------------------------------------------ kernel
def find_kernel(spec):
    if spec and os.path.exists(spec):
        return os.path.abspath(spec)
    pats = sorted(glob.glob(os.path.join(CACHE, "vmlinuz-*")))
    if spec:  # "6.1" must not match "6.12...": the prefix must end at a non-digit
        pats = [p for p in pats if re.match(r"vmlinuz-" + re.escape(spec) + r"(?!\d)", os.path.basename(p))]
    if not pats:
        raise SystemExit(f"no kernel matching {spec!r} in {CACHE}; run ./setup.sh first")

    def key(p):
        return [int(x) for x in re.findall(r"\d+", os.path.basename(p))[:3]]
    return max(pats, key=key)


# ------------------------------------------------------------------ initramfs
def build_probe():
    """the probe, named after its source's hash: this extended copy must not replace the
    numaprobe that ../shared/oracle builds into the same cache"""
    src = os.path.join(HERE, "src", "numaprobe.c")
    digest = hashlib.sha256(open(src, "rb").read()).hexdigest()[:12]
    exe = os.path.join(CACHE, "numaprobe-" + digest)
    if not os.path.exists(exe):
        os.makedirs(CACHE, exist_ok=True)
        subprocess.run(["gcc", "-O2", "-Wall", "-static", "-o", exe, src], check=True)
    return exe


class Cpio:
    """minimal newc writer (no external cpio needed)"""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _hdr(self, name, mode, size, nlink=1):
        name_b = name.encode() + b"\0"
        h = "070701" + "".join(f"{x:08X}" for x in (
            self.ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name_b), 0))
        self.ino += 1
        self.buf.write(h.encode() + name_b)
        self._pad()

    def _pad(self):
        self.buf.write(b"\0" * ((4 - self.buf.tell() % 4) % 4))

    def dir(self, name):
        self._hdr(name, stat.S_IFDIR | 0o755, 0, 2)

    def file(self, name, data, mode=0o644):
        self._hdr(name, stat.S_IFREG | mode, len(data))
        self.buf.write(data)
        self._pad()

    def symlink(self, name, target):
        t = target.encode()
        self._hdr(name, stat.S_IFLNK | 0o777, len(t))
        self.buf.write(t)
        self._pad()

    def close(self):
        self._hdr("TRAILER!!!", 0, 0)
        return self.buf.getvalue()


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /mnt/ramfs /mnt/tmpfs
mount -t ramfs ramfs /mnt/ramfs
mount -t tmpfs tmpfs /mnt/tmpfs
echo @@ORACLE-BEGIN
echo "@@UPTIME $(cut -d' ' -f1 /proc/uptime)"
echo "@@KERNEL $(uname -r)"
if [ -f /info ]; then
  echo "@@INFO-BEGIN"
  echo "### /proc/cmdline"; cat /proc/cmdline
  for n in /sys/devices/system/node/node*; do
    echo "### $n cpulist=$(cat $n/cpulist) distance=$(cat $n/distance)"
    cat $n/meminfo | grep -E 'MemTotal|MemFree|MemUsed'
  done
  echo "### /sys/devices/system/node/{possible,online,has_memory,has_cpu,has_normal_memory}"
  for f in possible online has_memory has_cpu has_normal_memory; do echo "$f: $(cat /sys/devices/system/node/$f)"; done
  echo "### /proc/sys/vm"
  for f in zone_reclaim_mode numa_zonelist_order min_free_kbytes watermark_scale_factor watermark_boost_factor lowmem_reserve_ratio percpu_pagelist_high_fraction; do
    [ -f /proc/sys/vm/$f ] && echo "$f: $(cat /proc/sys/vm/$f)"; done
  echo "### /proc/sys/kernel/numa_balancing: $(cat /proc/sys/kernel/numa_balancing 2>/dev/null)"
  echo "### /sys/kernel/mm/transparent_hugepage/enabled: $(cat /sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null)"
  if [ -d /sys/kernel/mm/mempolicy/weighted_interleave ]; then
    echo "### weighted_interleave weights"
    for f in /sys/kernel/mm/mempolicy/weighted_interleave/*; do echo "$f: $(cat $f)"; done
  fi
  echo "### dmesg (NUMA / zones / fallback)"
  dmesg | grep -i -E 'numa|node|zone|fallback|zonelist|memory:|Movable|DMA' | grep -v -i -E 'pci|acpi: ' 
  echo "### /proc/zoneinfo"
  cat /proc/zoneinfo
  echo "### /proc/buddyinfo"
  cat /proc/buddyinfo
  echo "@@INFO-END"
fi
if [ -f /swap_kib ]; then
  # '#@ swap SIZE': a brd ramdisk as the swap device (its pages are allocated by brd on write,
  # under the writer's policy: numastat sees them, the swapped pages' node does not depend on them)
  insmod /brd.ko rd_nr=1 rd_size=$(cat /swap_kib) max_part=0 || echo "@@SWAP-FAILED insmod"
  mkswap /dev/ram0 >/dev/null || echo "@@SWAP-FAILED mkswap"
  swapon /dev/ram0 || echo "@@SWAP-FAILED swapon"
  echo "@@SWAP $(tail -n +2 /proc/swaps | tr -s ' \t' ' ')"
fi
for s in /scen/*; do
  [ -f "$s" ] || continue
  echo "@@SCENARIO $(basename $s)"
  /numaprobe "$s"
  echo "@@SCENARIO-END rc=$?"
done
echo "@@UPTIME $(cut -d' ' -f1 /proc/uptime)"
echo @@ORACLE-END
poweroff -f
"""


def find_module(kernel, name="brd.ko"):
    """$ORACLE_CACHE/modules/<version>/<name> for a cached vmlinuz-<version> (setup.sh puts it there)"""
    ver = os.path.basename(kernel)[len("vmlinuz-"):]
    path = os.path.join(CACHE, "modules", ver, name)
    if not os.path.isfile(path):
        raise SystemExit(f"no {path}: a swap scenario needs the kernel's {name}; run ./setup.sh "
                         "(it keeps brd.ko from the same linux-image package)")
    return path


def build_initramfs(scenarios, info, path, swap_kib=0, kernel=None):
    c = Cpio()
    for d in ("bin", "proc", "sys", "dev", "scen", "tmp", "mnt"):
        c.dir(d)
    c.file("bin/busybox", open(shutil.which("busybox") or "/bin/busybox", "rb").read(), 0o755)
    c.symlink("bin/sh", "busybox")
    c.file("init", INIT.encode(), 0o755)
    c.file("numaprobe", open(build_probe(), "rb").read(), 0o755)
    if info:
        c.file("info", b"1\n")
    if swap_kib:
        c.file("brd.ko", open(find_module(kernel), "rb").read())
        c.file("swap_kib", f"{swap_kib}\n".encode())
    for i, s in enumerate(scenarios):
        c.file(f"scen/{i:02d}_{os.path.basename(s)}", open(s, "rb").read())
    with gzip.open(path, "wb", compresslevel=1) as f:
        f.write(c.close())


# ------------------------------------------------------------------ run
def boot(kernel, layout, scenarios, info, append_extra, timeout, verbose, swap_kib=0):
    with tempfile.TemporaryDirectory(prefix="numa-oracle-") as td:
        initrd = os.path.join(td, "initrd.gz")
        build_initramfs(scenarios, info, initrd, swap_kib, kernel)
        append = DEFAULT_APPEND + " " + layout["append"] + " " + (append_extra or "")
        cmd = (["qemu-system-x86_64", "-accel", "tcg", "-machine", "pc", "-nographic",
                "-no-reboot", "-nodefaults", "-serial", "stdio", "-net", "none",
                "-kernel", kernel, "-initrd", initrd, "-append", append.strip()]
               + qemu_numa_args(layout) + layout["qemu"])
        if verbose:
            print(" ".join(cmd), file=sys.stderr)
        t0 = time.time()
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           stdin=subprocess.DEVNULL, timeout=timeout)
        wall = time.time() - t0
    out = p.stdout.decode(errors="replace").replace("\r\n", "\n")
    return out, wall


def split_output(console):
    """console text -> (meta, info_text, {scenario: [lines]})"""
    if BEGIN not in console or END not in console:
        raise RuntimeError("guest did not finish; console tail:\n" + console[-4000:])
    body = console.split(BEGIN, 1)[1].split(END, 1)[0]
    meta, info, scen, cur, in_info = {}, [], {}, None, False
    uptimes = []
    for line in body.split("\n"):
        if line.startswith("@@UPTIME"):
            uptimes.append(float(line.split()[1]))
        elif line.startswith("@@KERNEL"):
            meta["kernel_release"] = line.split()[1]
        elif line.startswith("@@SWAP"):
            meta.setdefault("swap", []).append(line[2:].strip())
        elif line.startswith("@@INFO-BEGIN"):
            in_info = True
        elif line.startswith("@@INFO-END"):
            in_info = False
        elif in_info:
            info.append(line)
        elif line.startswith("@@SCENARIO-END"):
            scen[cur].append("exit " + line.split()[1])
            cur = None
        elif line.startswith("@@SCENARIO "):
            cur = line.split(None, 1)[1]
            scen[cur] = []
        elif cur is not None and line.strip():
            scen[cur].append(line)
    if uptimes:
        meta["guest_uptime_at_start_s"] = uptimes[0]
        meta["guest_uptime_at_end_s"] = uptimes[-1]
    return meta, "\n".join(info), scen


def _val(v):
    if re.fullmatch(r"-?\d+", v):
        return int(v)
    return v


def parse_lines(lines):
    """numaprobe text lines -> structured dict.  Every result line becomes
    {"type": <first word>, key: value, ...}; lines "> cmd" open a step."""
    steps, pages, numastat = [], {}, {}
    step = None
    for line in lines:
        if line.startswith("> "):
            step = {"cmd": line[2:], "results": []}
            steps.append(step)
            continue
        if line.startswith("| "):
            rec = {"type": "text", "text": line[2:]}
        else:
            head, sep, tail = line.partition(" | ")
            w = head.split()
            rec = {"type": w[0]}
            for kv in w[1:]:
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    rec[k] = _val(v)
            if sep:
                rec["text"] = tail
        if step is None:
            step = {"cmd": None, "results": []}
            steps.append(step)
        step["results"].append(rec)
        if rec["type"] == "page":
            pages.setdefault(str(rec["region"]), {})[str(rec["index"])] = rec.get("node", rec.get("err"))
        if rec["type"] in ("numastat", "numastat_delta"):
            numastat.setdefault(rec["type"], {})[str(rec["node"])] = {
                k: v for k, v in rec.items() if k not in ("type", "node")}
    return {"steps": steps, "last_page_nodes": pages, "numastat": numastat}


# line kinds whose values depend on timing / memory state, not on policy logic
NOISY = ("numastat", "vmstat", "zone ", "fill ", "fill_step ", "headroom ", "numa_maps ", "meminfo ", "| ")


def run_order(summary_line):
    """'runs=1-254:2,255-509:3,...' -> [2, 3, ...]: the nodes in the order of
    their FIRST appearance (under memory pressure a node that regains a few
    free pages may reappear later; that part is timing noise)"""
    m = re.search(r"runs=(\S+)", summary_line)
    order = []
    for part in (m.group(1).split(",") if m else []):
        node = part.rsplit(":", 1)[1]
        if node not in order:
            order.append(node)
    return order


def compare(expected, got):
    """compare two result line lists; for scenarios that use 'fill' only the
    node ORDER of each query is compared (counts move by tens of pages)."""
    pressure = any(l.startswith("> fill") for l in expected)
    def keep(l):
        if l.startswith(NOISY):
            return False
        if pressure and l.startswith("page "):
            return False
        return True
    a = [l for l in expected if keep(l)]
    b = [l for l in got if keep(l)]
    diffs = []
    for i in range(max(len(a), len(b))):
        x = a[i] if i < len(a) else "<missing>"
        y = b[i] if i < len(b) else "<missing>"
        if pressure and x.startswith("summary ") and y.startswith("summary "):
            if run_order(x) != run_order(y):
                diffs.append((x, y))
        elif x != y:
            diffs.append((x, y))
    return diffs


def scenario_layout(path, default):
    """a scenario may name its layout in a line '#@ layout NAME' (NAME = a
    file in layouts/ without .layout, or a path)"""
    for raw in open(path):
        m = re.match(r"#@\s*layout\s+(\S+)", raw)
        if m:
            name = m.group(1)
            for cand in (name, os.path.join(HERE, "layouts", name + ".layout"),
                         os.path.join(HERE, "layouts", name)):
                if os.path.isfile(cand):
                    return cand
            raise SystemExit(f"{path}: layout {name!r} not found")
    return default


def scenario_swap(path):
    """'#@ swap SIZE' (SIZE like 64M, 65536K) -> KiB of brd swap the boot needs, 0 if none"""
    for raw in open(path):
        m = re.match(r"#@\s*swap\s+(\S+)", raw)
        if m:
            return parse_size(m.group(1)) // 1024
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*")
    ap.add_argument("-e", "--exec", dest="inline", action="append", default=[],
                    help="inline scenario, commands separated by ';' (may be repeated)")
    ap.add_argument("--layout", help="layout file for all scenarios (default: the scenario's "
                    "'#@ layout' line, else layouts/4node-asym.layout)")
    ap.add_argument("--kernel", default="6.12", help="path to a bzImage, or a version prefix of $ORACLE_CACHE/vmlinuz-* (default 6.12)")
    ap.add_argument("--append", default="", help="extra kernel command line")
    ap.add_argument("--info", action="store_true", help="also dump zoneinfo, distances, dmesg fallback order")
    ap.add_argument("--info-out", help="write the --info text to this file")
    ap.add_argument("--text", action="store_true", help="print raw result lines instead of JSON")
    ap.add_argument("--save-expected", action="store_true",
                    help="write scenarios' results to expected_<stem>.<kernel major.minor>.txt beside each scenario")
    ap.add_argument("--check", action="store_true",
                    help="compare with the stored expected_<stem>.<kernel>.txt; exit 1 on a difference")
    ap.add_argument("--separate", action="store_true", help="boot once per scenario")
    ap.add_argument("--parse", help="parse a stored result text file to JSON and exit")
    ap.add_argument("--console", help="append the full serial console log to this file")
    ap.add_argument("--timeout", type=int, default=300)
    ap.add_argument("-v", "--verbose", action="store_true")
    a = ap.parse_args()

    if a.parse:
        lines = [l.rstrip("\n") for l in open(a.parse) if l.strip() and not l.startswith("##")]
        print(json.dumps(parse_lines(lines), indent=1))
        return
    tmpdir = tempfile.mkdtemp(prefix="numa-oracle-inline-")
    import atexit
    atexit.register(shutil.rmtree, tmpdir, True)
    for i, text in enumerate(a.inline):
        path = os.path.join(tmpdir, f"inline{i}.txt")
        open(path, "w").write("\n".join(c.strip() for c in text.split(";")) + "\n")
        a.scenarios.append(path)
    if not a.scenarios and not a.info:
        ap.error("give at least one scenario (or --info, or -e 'cmd; cmd')")
    default_layout = os.path.join(HERE, "layouts", "4node-asym.layout")
    kernel = find_kernel(a.kernel)
    # group scenarios by layout, keeping order
    # one boot per run of scenarios with the same layout and the same swap need
    groups = []
    for s in a.scenarios:
        lay = a.layout or scenario_layout(s, default_layout)
        swap = scenario_swap(s)
        if a.separate or not groups or groups[-1][0] != lay or groups[-1][2] != swap:
            groups.append((lay, [s], swap))
        else:
            groups[-1][1].append(s)
    if not groups:
        groups = [(a.layout or default_layout, [], 0)]
    result = {"kernel_image": os.path.basename(kernel), "boots": [], "scenarios": {}}
    check_fail = False
    for lay, grp, swap_kib in groups:
        layout = read_layout(lay)
        for attempt in range(3):
            console, wall = boot(kernel, layout, grp, a.info, a.append, a.timeout, a.verbose, swap_kib)
            # under TCG the guest kernel occasionally oopses at boot (an int3
            # hit while a static key is being patched), before any scenario
            # has run; such a boot says nothing about the scenarios: retry it
            if BEGIN in console or attempt == 2:
                break
            print(f"guest died before the scenarios started (attempt {attempt + 1}); booting again",
                  file=sys.stderr)
        if a.console:
            open(a.console, "a").write(console)
        meta, info, scen = split_output(console)
        meta["host_wall_s"] = round(wall, 2)
        meta["layout"] = os.path.basename(lay)
        meta["scenarios"] = [os.path.basename(s) for s in grp]
        result["boots"].append(meta)
        if info:
            if a.info_out:
                open(a.info_out, "w").write(info + "\n")
            else:
                result["info"] = info
        by_base = {os.path.basename(s): s for s in grp}
        for name, lines in scen.items():
            base = re.sub(r"^\d\d_", "", name, count=1)
            kver = ".".join(meta.get("kernel_release", "unknown").split("-")[0].split(".")[:2])
            hdr = (f"## kernel {meta.get('kernel_release')}  layout {os.path.basename(lay)}  "
                   f"scenario {base}")
            if a.check and base in by_base:
                src = by_base[base]
                stem = os.path.splitext(os.path.basename(src))[0]
                exp = os.path.join(os.path.dirname(os.path.abspath(src)), f"expected_{stem}.{kver}.txt")
                if not os.path.exists(exp):
                    print(f"CHECK {base}: no {os.path.basename(exp)}", file=sys.stderr)
                    check_fail = True
                else:
                    d = compare([l.rstrip("\n") for l in open(exp) if not l.startswith("## ")], lines)
                    print(f"CHECK {base} vs {os.path.basename(exp)}: {'OK' if not d else str(len(d)) + ' differences'}",
                          file=sys.stderr)
                    for x, y in d[:10]:
                        print(f"   expected: {x[:200]}\n   got:      {y[:200]}", file=sys.stderr)
                    check_fail = check_fail or bool(d)
            if a.save_expected and base in by_base:
                src = by_base[base]
                stem = os.path.splitext(os.path.basename(src))[0]
                dst = os.path.join(os.path.dirname(os.path.abspath(src)), f"expected_{stem}.{kver}.txt")
                open(dst, "w").write(hdr + "\n" + "\n".join(lines) + "\n")
            if a.text:
                print(hdr)
                print("\n".join(lines))
            else:
                r = parse_lines(lines)
                r["kernel_release"] = meta.get("kernel_release")
                r["layout"] = os.path.basename(lay)
                result["scenarios"][base] = r
    if a.text:
        for b in result["boots"]:
            print(f"## boot {json.dumps(b)}", file=sys.stderr)
    elif not a.check:
        print(json.dumps(result, indent=1))
    if a.check:
        sys.exit(1 if check_fail else 0)


if __name__ == "__main__":
    main()
