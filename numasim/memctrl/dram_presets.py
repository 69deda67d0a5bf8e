"""DRAM presets for the ``dram`` memory-controller model, every number with its source.

A preset is a tuple of :class:`Param` (name, value, unit, description, source).  Timings are
in DRAM clock cycles (nCK, the JEDEC convention after rounding ns up to whole clocks); the
clock comes from ``data_rate`` (tCK = 2000 / data_rate ns).

Sources (read in this session; numbers were compared, nothing copied):

* ``MICRON16`` -- Micron 16Gb DDR4 SDRAM data sheet (16gb_ddr4_dram.pdf Rev. B 05/19), speed
  bins -062E DDR4-3200 22-22-22 (tAA = tRCD = tRP = 13.75 ns) and -068 DDR4-2933 21-21-21
  (14.32 ns); page 1 as shown at https://www.scribd.com/document/417441641 (search copy).
* ``MICRON4`` -- Micron 4Gb DDR4 data sheet (4gb_ddr4_dram.pdf Rev. G 1/17), AC timing table
  157 and speed-bin tables 150-152 (http://www.datasheetandpdf.com/EN/MICRON/344/
  MT40A1G4RH-083E.htm and .../333/...): the forms tCCD_S = 4 nCK, tCCD_L = max(4 nCK, x ns),
  tRTP = max(4 nCK, 7.5 ns), tRAS = 32 ns, tRC = tRAS + tRP.
* ``DRAMSIM3`` -- DRAMsim3 (umd-memsys/DRAMsim3, commit 0eb63609, configs/DDR4_8Gb_x4_2666.ini,
  DDR4_8Gb_x4_2933.ini, DDR4_8Gb_x4_3200.ini, HBM2_8Gb_x128.ini): every JEDEC DDR4 timing
  of an 8Gb x4 die in clocks (tRFC 350 ns, tREFI 7.8 us, tFAW/tRRD for the 1/2 KB page of a
  x4 die), agreeing with MICRON16/MICRON4 where both give a number.
* ``JESD79-5`` -- JEDEC DDR5 standard, DDR5-4800B bin (40-39-39), tCCD_L/tRRD_L = max(8 nCK,
  5 ns), tWTR_L = max(16 nCK, 10 ns), tRFC1 295 ns (16Gb), tREFI 3.9 us: recalled from the
  standard, NOT read from a data-sheet page in this session; the table layout (and tRFC1
  295 ns for 16Gb, tREFI base 3900 ns) matches Ramulator 2 (CMU-SAFARI/ramulator2,
  src/dram/impl/DDR5.cpp, which ships only DDR5-3200 bins).  Treat as the weakest preset
  after HBM2e.
* ``HBM`` -- HBM2e: JESD235C raises the pin rate to 3.2 Gb/s, 1024 bits per stack = 409.6
  GB/s (Rambus HBM2E controller note, https://kriliny.blogspot.com/2020/03/rambus-develops-
  hbm2e-controller-phy-32.html).  Array timings in ns from DRAMsim3 HBM2_8Gb_x128.ini (at
  tCK = 1 ns) rescaled to tCK = 0.625 ns (array timings are set in ns, the I/O rate does
  not change them).  Pseudo-channel mode: 16 pseudo channels of 64 bits per stack.
* ``CXL`` -- a CXL-attached DDR5 expander: the DRAM is the DDR5-4800 preset; the device adds
  controller + link latency.  Published: ASIC expanders measure 2-5x local-DRAM latency
  (Wang et al., "Exploring and Evaluating Real-world CXL", arXiv 2405.14209, summary at
  http://www.zerna.io/.../engineering-paper-2405_14209); the shipped cxl-1s machine (an early
  FPGA device, MLC 564.5 ns vs 84.5 ns local) adds 480 ns.  Default added latency = the low
  end: 1x the idle local DDR5 latency of an EPYC 9354P (113.0 ns, MLC, mars-research/DRAMHiT,
  /work/shared/data/measured/mlc-loaded-latency.md section 6a).

Assumed where no source says (named ``assumed`` in the table): rank counts and die width of
the servers' DIMMs (1 rank of x4 8Gb dies for 16 GB RDIMMs), controller queue sizes and
write watermarks (Ramulator 2's defaults are of the same order), tRTRS.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Param:
    """One declared parameter: what it is, its default, its unit and where it comes from."""

    name: str
    value: float
    unit: str
    description: str
    source: str


DESCRIPTIONS = {
    "data_rate": ("MT/s", "transfers per second per data pin; tCK = 2000 / data_rate ns"),
    "bus_bytes": ("B", "data bus width of one channel (sub-channel for DDR5, pseudo channel "
                       "for HBM)"),
    "channels": ("count", "independent channels behind this controller (one NUMA node)"),
    "ranks": ("count", "ranks per channel"),
    "bankgroups": ("count", "bank groups per rank"),
    "banks": ("count", "banks per bank group"),
    "row_bytes": ("B", "row (page) size of one rank: die page x dies per rank"),
    "CL": ("nCK", "read command to first data (tAA)"),
    "CWL": ("nCK", "write command to first data"),
    "tRCD": ("nCK", "ACT to RD/WR"),
    "tRP": ("nCK", "PRE to ACT"),
    "tRAS": ("nCK", "ACT to PRE"),
    "tBURST": ("nCK", "data bus cycles of one 64-byte line (BL/2)"),
    "tCCD_S": ("nCK", "column command to column command, different bank group"),
    "tCCD_L": ("nCK", "column command to column command, same bank group"),
    "tRRD_S": ("nCK", "ACT to ACT, different bank group"),
    "tRRD_L": ("nCK", "ACT to ACT, same bank group"),
    "tFAW": ("nCK", "window holding at most four ACTs per rank"),
    "tWTR_S": ("nCK", "end of write data to RD, different bank group"),
    "tWTR_L": ("nCK", "end of write data to RD, same bank group"),
    "tRTP": ("nCK", "RD to PRE"),
    "tWR": ("nCK", "end of write data to PRE (write recovery)"),
    "tRTRS": ("nCK", "data bus gap when the next burst comes from another rank"),
    "tREFI": ("nCK", "refresh interval per rank"),
    "tRFC": ("nCK", "refresh cycle time: the rank is unavailable this long every tREFI"),
    "window": ("count", "FR-FCFS: requests of a queue the scheduler looks at"),
    "write_high": ("count", "write queue occupancy that starts a write drain"),
    "write_low": ("count", "write queue occupancy that ends a write drain"),
    "hit_cap": ("count", "row hits that may overtake the oldest request (FR-FCFS-Cap)"),
    "refresh": ("bool", "1: model refresh, 0: none (tests, teaching)"),
    "added_latency_ns": ("ns", "latency outside the DRAM added to every request (CXL "
                               "device controller and link, both ways)"),
}

_CTRL = {"window": 48, "write_high": 48, "write_low": 24, "hit_cap": 16, "refresh": 1,
         "added_latency_ns": 0, "tRTRS": 2}
_CTRL_SRC = ("assumed (controller policy; Ramulator 2 and DRAMsim3 use queues of 16-64): "
             "window 48 and watermarks 48/24 put the 'streams' 2:1 and 1:1 mixes at 0.82 and "
             "0.81 of read-only on DDR4-2933, clx-2s MLC measures 0.89 and 0.84")


def _table(values: dict[str, float], sources: dict[str, str]) -> tuple[Param, ...]:
    out = []
    for name, (unit, desc) in DESCRIPTIONS.items():
        v = values.get(name, _CTRL.get(name))
        out.append(Param(name, float(v), unit, desc, sources.get(name, _CTRL_SRC)))
    return tuple(out)


def _ddr4(rate, cl, cwl, rcd, ras, ccd_l, rrd_l, wtr_l, rtp, wr, refi, rfc, src_bin):
    v = dict(data_rate=rate, bus_bytes=8, channels=6, ranks=1, bankgroups=4, banks=4,
             row_bytes=8192, CL=cl, CWL=cwl, tRCD=rcd, tRP=rcd, tRAS=ras, tBURST=4, tCCD_S=4,
             tCCD_L=ccd_l, tRRD_S=4, tRRD_L=rrd_l, tFAW=16, tWTR_S=4, tWTR_L=wtr_l, tRTP=rtp,
             tWR=wr, tREFI=refi, tRFC=rfc)
    s = {k: "DRAMSIM3 (8Gb x4 die); " + src_bin for k in v}
    s["data_rate"] = src_bin
    s["bus_bytes"] = "JEDEC DDR4: 64-bit data (ECC bits not counted)"
    s["tBURST"] = "BL8 on a double-data-rate bus: 4 clocks"
    s["channels"] = "6 DDR4 channels per socket on Skylake-SP/Cascade Lake-SP (one node)"
    s["ranks"] = "assumed: one rank of x4 dies (16 GB RDIMM), 1 DIMM per channel"
    s["row_bytes"] = "8Gb x4 die: 512 B page (DRAMSIM3 columns x width) x 16 data dies"
    return _table(v, s)


PRESETS: dict[str, tuple[Param, ...]] = {
    "ddr4-2666": _ddr4(2666, 19, 14, 19, 43, 7, 7, 10, 10, 20, 10398, 467,
                       "DDR4-2666 (Skylake-SP Gold 6148/Platinum 8180 servers); MICRON4 forms"),
    "ddr4-2933": _ddr4(2933, 21, 16, 21, 47, 8, 8, 11, 11, 22, 11439, 514,
                       "MICRON16 -068 DDR4-2933 21-21-21 (clx-2s: 12x16GB DDR4-2933)"),
    "ddr4-3200": _ddr4(3200, 22, 16, 22, 52, 8, 8, 12, 12, 24, 12480, 560,
                       "MICRON16 -062E DDR4-3200 22-22-22"),
}


def _ddr5(channels: int, added_ns: float, ctx: str) -> tuple[Param, ...]:
    v = dict(data_rate=4800, bus_bytes=4, channels=channels, ranks=1, bankgroups=8, banks=4,
             row_bytes=8192, CL=40, CWL=38, tRCD=39, tRP=39, tRAS=77, tBURST=8, tCCD_S=8,
             tCCD_L=12, tRRD_S=8, tRRD_L=12, tFAW=40, tWTR_S=6, tWTR_L=24, tRTP=18, tWR=72,
             tREFI=9360, tRFC=708, added_latency_ns=added_ns)
    s = {k: "JESD79-5 DDR5-4800B (16Gb x4 die)" for k in v}
    s["bus_bytes"] = "JESD79-5: two independent 32-bit sub-channels per DIMM"
    s["tBURST"] = "BL16 on a 32-bit sub-channel = 64 B in 8 clocks"
    s["channels"] = ctx
    s["ranks"] = "assumed: one rank per sub-channel (1R RDIMM)"
    s["row_bytes"] = "assumed: 1 KB x4-die page x 8 data dies per sub-channel"
    s["tFAW"] = ("Ramulator 2 DDR5.cpp nFAW table, x4 die: 40 nCK (given there for 3200; "
                 "kept in clocks at 4800, as JESD79-5 states tFAW in nCK for these bins)")
    s["added_latency_ns"] = ("0: DIMM on the CPU's own controller" if added_ns == 0 else
                             "CXL: low end of 2-5x local (arXiv 2405.14209) x 113.0 ns local "
                             "DDR5 idle (EPYC 9354P MLC)")
    return _table(v, s)


PRESETS["ddr5-4800"] = _ddr5(16, 0, "8 DDR5 channels (16 sub-channels) per socket: Sapphire "
                                    "Rapids; Genoa has 12 (set channels: 24)")
PRESETS["cxl-ddr5"] = _ddr5(4, 113.0, "assumed: an expander with two DDR5-4800 channels "
                                      "(4 sub-channels) behind a x8 CXL link")


def _hbm2e() -> tuple[Param, ...]:
    ns = 1.0 / 0.625  # DRAMsim3's HBM2 timings are at tCK = 1 ns; HBM2e runs at 0.625 ns
    r = lambda x: float(-(-round(x * ns * 1000) // 1000))  # noqa: E731 - ceil to nCK
    v = dict(data_rate=3200, bus_bytes=8, channels=16, ranks=1, bankgroups=4, banks=4,
             row_bytes=1024, CL=r(14), CWL=r(4), tRCD=r(14), tRP=r(14), tRAS=r(34), tBURST=4,
             tCCD_S=4, tCCD_L=6, tRRD_S=r(4), tRRD_L=r(6), tFAW=r(30), tWTR_S=r(6),
             tWTR_L=r(8), tRTP=r(6), tWR=r(16), tREFI=r(3900), tRFC=r(260))
    s = {k: "HBM: DRAMSIM3 HBM2_8Gb_x128 ns values at tCK 0.625 ns" for k in v}
    s["data_rate"] = "HBM: JESD235C 3.2 Gb/s per pin"
    s["channels"] = "HBM: 8 channels x 2 pseudo channels per stack (one stack)"
    s["bus_bytes"] = "HBM: pseudo channel = 64 bits"
    s["tBURST"] = "HBM: 64 B over a 64-bit pseudo channel = 8 transfers = 4 clocks (2x BL4)"
    s["tCCD_S"] = "= tBURST (the data bus limit of a 64 B line)"
    s["tCCD_L"] = "assumed: tBURST + 2 (DRAMSIM3 has tCCD_L - tCCD_S = 1 clock at 1 ns)"
    s["row_bytes"] = "HBM: DRAMSIM3 64 columns x 128 bits = 1 KB"
    s["ranks"] = "HBM: one (no ranks in pseudo-channel mode)"
    return _table(v, s)


PRESETS["hbm2e"] = _hbm2e()
