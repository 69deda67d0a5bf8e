"""Link protocol costs, device write bandwidth and the core's miss slots per level.

* a route's hop costs are what the protocol declares (request and completion messages on the
  opposite direction, a header on every data line), exactly;
* a remote stream puts exactly those bytes on the links, in both engines (one thread: no
  queueing, so the counts are exact), and a saturated protocol link delivers its payload
  rate ``raw * 64 / (64 + header)`` of data;
* a device's declared write bandwidth is what a saturated write stream gets;
* the stream prefetcher gives a sequential single thread ``l2_mlp`` misses in flight and
  leaves random access at ``mlp``;
* bad input is refused with a message naming the field.
"""

from __future__ import annotations

import pytest

from numasim.api import run
from numasim.errors import ConfigError
from numasim.machine.params import CpuParams
from numasim.machine.resources import build_resources
from numasim.topology.build import make_machine
from numasim.topology.loaders import load_machine
from numasim.topology.loaders.yaml_machine import dump, loads
from numasim.topology.model import LINK_PROTOCOLS, Link, LinkProtocol, Node
from numasim.workloads.kernels import build_kernel
from numasim.workloads.model import Phase, Region, Workload

HDR, REQ, CMP = 8.0, 8.0, 8.0
PROTO = LinkProtocol("test", HDR, REQ, CMP, "directory", 0.0)


def _two(proto: LinkProtocol | None, link_gbps: float = 30.0, remote_gbps: float = 100.0):
    """Two nodes, one link; the matrix's remote entries high so the link is what binds."""
    return make_machine("two", [Node(0, tuple(range(16)), 8 << 30),
                                Node(1, tuple(range(16, 32)), 8 << 30)],
                        latency_ns=[[80, 130], [130, 80]],
                        bandwidth_GBps=[[200, remote_gbps], [remote_gbps, 200]],
                        links=[Link(0, 1, link_gbps, protocol=proto)], cpu_ghz=2.0)


def _phase(result, name):
    return next(p for p in result.to_dict()["phases"] if p["name"] == name)


def _res_bytes(result) -> dict[str, int]:
    return {r["name"]: r["bytes"] for r in result.to_dict()["resources"]}


def test_route_costs_are_the_declared_messages():
    res = build_resources(_two(PROTO))
    frac = REQ / (64 + HDR)
    assert res.route_costs(0, 1) == [("cap 0->1", pytest.approx(frac)),
                                     ("link 0->1", pytest.approx(frac)),
                                     ("mc 1", 1.0), ("cap 1->0", 1.0), ("link 1->0", 1.0)]
    assert res.route_costs(0, 1, write=True) == [
        ("cap 0->1", 1.0), ("link 0->1", 1.0), ("mc 1", 1.0),
        ("cap 1->0", pytest.approx(CMP / (64 + HDR))),
        ("link 1->0", pytest.approx(CMP / (64 + HDR)))]
    assert res.route_costs(0, 0) == [("mc 0", 1.0)]  # directory: local reads send nothing
    # the link's bandwidth is its payload rate: a data message is a line and its header
    k = res.names.index("link 1->0")
    assert res.bandwidth_GBps[k] == pytest.approx(30.0 * 64 / (64 + HDR))


def test_broadcast_coherence_snoops_the_other_socket_on_local_reads():
    qpi = LINK_PROTOCOLS["qpi"]
    res = build_resources(_two(qpi))
    f = qpi.snoop_bytes / (64 + qpi.data_header_bytes)
    # a local read on node 0: the home snoops node 1 and gets the response back
    assert res.route_costs(0, 0) == [("mc 0", 1.0), ("cap 0->1", pytest.approx(f)),
                                     ("link 0->1", pytest.approx(f)),
                                     ("cap 1->0", pytest.approx(f)),
                                     ("link 1->0", pytest.approx(f))]


def test_no_protocol_keeps_every_cost_one():
    res = build_resources(load_machine("epyc-8n-nps4"))
    assert (res.cost_read[res.route_read >= 0] == 1.0).all()
    assert (res.cost_write[res.route_write >= 0] == 1.0).all()


def _remote_reader(size: int) -> Workload:
    """One thread on node 0 first-touches a region bound to node 1 and reads it."""
    return Workload(name="remote", threads=1, cpus=[0],
                    regions=[Region("data", size, policy="--membind=1")],
                    phases=[Phase("init", "init", ["data"]),
                            Phase("read", "stride", ["data"], stride=64)])


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_remote_stream_puts_exactly_the_message_bytes_on_the_links(engine):
    """Every line that crosses 1->0 (reads, reads for ownership) sends a request on 0->1,
    every line written to node 1 (zeroing, write-backs) gets a completion on 1->0: the
    difference a protocol makes to each direction is the other direction's data lines times
    the message's share of a data message, to the byte (one thread: nothing is left queued)."""
    wl = _remote_reader(512 << 10)
    plain = _res_bytes(run(_two(None), wl, engine=engine))
    proto = _res_bytes(run(_two(PROTO), wl, engine=engine))
    data_10, data_01 = plain["link 1->0"], plain["link 0->1"]
    assert data_10 > 0 and data_01 > 0
    assert proto["link 0->1"] - data_01 == pytest.approx(data_10 * REQ / (64 + HDR), abs=1)
    assert proto["link 1->0"] - data_10 == pytest.approx(data_01 * CMP / (64 + HDR), abs=1)
    assert proto["mc 1"] == plain["mc 1"]  # the controller sees the same lines


@pytest.mark.parametrize("engine,size", [("fast", 16 << 20), ("exact", 1 << 20)])
def test_saturated_protocol_link_delivers_its_payload_rate(engine, size):
    wl = Workload(name="readers", threads=16, cpus=list(range(16, 32)),
                  regions=[Region("data", size, policy="--membind=0")],
                  phases=[Phase("init", "init", ["data"]),
                          Phase("read", "stride", ["data"], stride=64)])
    ph = _phase(run(_two(PROTO), wl, engine=engine), "read")
    payload = 30.0 * 64 / (64 + HDR)
    assert ph["resources"]["link 0->1"]["GBps"] == pytest.approx(payload, rel=0.02)
    assert ph["resources"]["link 0->1"]["GBps"] <= payload * 1.02
    # the request direction carries one request per line read
    assert ph["resources"]["link 1->0"]["GBps"] == pytest.approx(
        payload * REQ / (64 + HDR), rel=0.02)


def _cxl(write_gbps: float | None):
    return make_machine("cxl", [Node(0, tuple(range(16)), 8 << 30),
                                Node(1, (), 8 << 30, mc_bandwidth_GBps=10.0,
                                     mc_write_bandwidth_GBps=write_gbps)],
                        latency_ns=[[80, 300], [80, 300]],
                        bandwidth_GBps=[[100, 10], [100, 10]], cpu_ghz=2.0)


@pytest.mark.parametrize("engine,size", [("fast", "8MiB"), ("exact", "1MiB")])
def test_device_write_bandwidth_when_saturated(engine, size):
    """Non-temporal stores of 16 threads to a device that writes at 4 GB/s and reads at 10:
    the device delivers 4 GB/s of writes (its controller busy all the time)."""
    wl = build_kernel("stride", threads=16, size=size, write=True)
    r = run(_cxl(4.0), wl, engine=engine, numactl="--membind=1",
            cpu={"write_allocate": False})
    ph = _phase(r, "stride")
    mc = ph["resources"]["mc 1"]
    # the report counts lines at the read bandwidth: 4 GB/s of writes keep it 100 % busy
    assert mc["utilisation"] == pytest.approx(1.0, abs=0.03)
    assert ph["bandwidth_GBps"] * 8 == pytest.approx(4.0, rel=0.03)


def test_cpu_less_node_writes_use_its_readers_entry():
    """The CPU-less node's own row is never measured: data written to it flows at the entry
    node 0's CPUs measured reading it, not at whatever its row says."""
    m = make_machine("cxl", [Node(0, tuple(range(4)), 8 << 30), Node(1, (), 8 << 30)],
                     latency_ns=[[80, 300], [80, 300]],
                     bandwidth_GBps=[[100, 10], [999, 999]], cpu_ghz=2.0)
    res = build_resources(m)
    k = res.names.index("link 0->1")
    assert res.bandwidth_GBps[k] == 10.0


@pytest.mark.parametrize("engine", ["fast", "exact"])
def test_prefetcher_raises_a_sequential_thread_and_not_a_random_one(engine):
    """One thread, nothing else running: bandwidth is slots x 64 B / latency.  The stream
    prefetcher gives a sweep l2_mlp slots (16, 1.6x the 10 of L1), so a read stride runs
    1.6x faster; GUPS's random accesses keep 10 and do not move at all."""
    m = load_machine("clx-2s")
    stride = build_kernel("stride", threads=1, size="2MiB")
    gups = build_kernel("gups", threads=1, size="2MiB", count=20000)
    out = {}
    for name, wl in (("stride", stride), ("gups", gups)):
        for pf in ("off", "stream"):
            r = run(m, wl, engine=engine, numactl="--membind=0", cpu={"prefetch": pf})
            out[name, pf] = _phase(r, name)["bandwidth_GBps"]
    assert out["stride", "stream"] / out["stride", "off"] == pytest.approx(1.6, rel=0.03)
    assert out["gups", "stream"] == out["gups", "off"]


def test_cpu_params_validate_the_new_fields():
    assert CpuParams().slots == 10  # prefetch off: the engines keep mlp slots
    assert CpuParams(prefetch="stream").slots == 16
    with pytest.raises(ConfigError, match="l2_mlp"):
        CpuParams().with_overrides(prefetch="stream", l2_mlp=4)
    with pytest.raises(ConfigError, match="prefetch"):
        CpuParams().with_overrides(prefetch="always")
    with pytest.raises(ConfigError, match="l2_mlp"):
        CpuParams().with_overrides(l2_mlp=0)


YAML = """
name: t
nodes:
  - {{id: 0, cpus: 0-3, memory: 1GiB}}
  - {{id: 1, cpus: [], memory: 1GiB, kind: CXL, controller_bandwidth: 20GB/s{node1}}}
latency:
  - [80ns, 250ns]
  - [80ns, 250ns]
links:
  - {{between: [0, 1], bandwidth: [32GB/s, 30GB/s]{link}}}
"""


def test_yaml_reads_protocols_and_device_fields_and_dumps_them_back():
    text = YAML.format(node1=", write_bandwidth: 8GB/s, device_latency: 150ns",
                       link=", protocol: {preset: cxl, completion_bytes: 4}")
    m = loads(text, file="t.yaml")
    assert m.node(1).mc_write_bandwidth_GBps == 8.0
    assert m.node(1).device_latency_ns == 150.0
    p = m.links[0].protocol
    assert p.completion_bytes == 4.0 and p.request_bytes == LINK_PROTOCOLS["cxl"].request_bytes
    assert m.links[0].bandwidth_towards(1, 0) == 30.0  # full duplex, each direction its own
    assert loads(dump(m)) == m
    assert loads(YAML.format(node1="", link=", protocol: upi")).links[0].protocol == \
        LINK_PROTOCOLS["upi"]


@pytest.mark.parametrize("node1,link,says", [
    ("", ", protocol: nvlink", "unknown link protocol 'nvlink'"),
    ("", ", protocol: {preset: upi, request_bytes: -1}", "request_bytes"),
    ("", ", protocol: {coherence: broadcast}", "broadcast needs snoop_bytes"),
    (", device_latency: 300ns", "", "below node 1's device_latency"),
    (", write_bandwidth: 0GB/s", "", "write_bandwidth"),
])
def test_yaml_refuses_nonsense_with_the_field(node1, link, says):
    with pytest.raises(ConfigError) as e:
        loads(YAML.format(node1=node1, link=link), file="t.yaml")
    text = str(e.value)
    assert says in text and "t.yaml" in text, text


@pytest.mark.parametrize("machine,numactl,cpu", [
    ("clx-2s", "--membind=1 --cpunodebind=0", {}),  # a remote triad over UPI, saturated
    ("clx-2s", "--interleave=all", {}),  # both directions carry data and messages
    ("clx-2s", "--membind=0 --cpunodebind=0", {"prefetch": "stream"}),  # 16 slots per CPU
])
def test_engines_agree_on_the_new_costs(machine, numactl, cpu):
    """The engines-agree tolerance (5 % on throughput and mean latency of the measured
    phases, tests/test_engines_agree.py) with protocol messages and the prefetcher's slots."""
    wl = build_kernel("stream", op="triad", threads=16, size="1MiB")
    both = {e: run(load_machine(machine), wl, engine=e, numactl=numactl, cpu=cpu).to_dict()
            for e in ("fast", "exact")}
    f, x = (_phase_of(both[e]) for e in ("fast", "exact"))
    assert f["bandwidth_GBps"] / x["bandwidth_GBps"] == pytest.approx(1.0, abs=0.05)
    assert f["latency_ns_mean"] / x["latency_ns_mean"] == pytest.approx(1.0, abs=0.05)


def _phase_of(d):
    return next(p for p in d["phases"] if p["measured"])
