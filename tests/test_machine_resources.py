"""Resources and routes: which queues a request passes between a CPU node and a memory node."""

from __future__ import annotations

import pytest

from numasim.machine.resources import build_resources
from numasim.topology.build import make_machine
from numasim.topology.loaders import load_machine
from numasim.topology.model import Link, Node


def test_explicit_link_routes_clx():
    res = build_resources(load_machine("clx-2s"))
    # a read by node 1's CPUs from node 0's memory: its request message (UPI protocol) on the
    # way to node 0, the controller, the matrix cap, then the link back
    assert res.route_names(1, 0) == ["cap 1->0", "link 1->0", "mc 0", "cap 0->1", "link 0->1"]
    # a write-back goes the other way, and its completion comes back
    assert res.route_names(1, 0, write=True) == ["cap 1->0", "link 1->0", "mc 0", "cap 0->1",
                                                 "link 0->1"]
    assert [c for _, c in res.route_costs(1, 0)] == pytest.approx([1 / 9, 1 / 9, 1, 1, 1])
    assert res.route_names(0, 0) == ["mc 0"]
    i = res.names.index("link 0->1")
    # 62.4 GB/s of flits: 64 of every 72 bytes are data (a header flit per 8 data flits)
    assert res.bandwidth_GBps[i] == pytest.approx(62.4 * 64 / 72)
    cap = res.names.index("cap 0->1")
    # data from node 0 to node 1 is what node 1's CPUs measured reading node 0: bw[1][0]
    assert res.bandwidth_GBps[cap] == pytest.approx(51.3092)
    # service time: 64 bytes at 122.0977 GB/s, in cycles of 2.3 GHz
    mc0 = res.names.index("mc 0")
    assert res.service[mc0] == pytest.approx(64 / 122.0977 * 2.3)
    assert res.latency[1, 0] == pytest.approx(130.2 * 2.3)


def test_full_mesh_from_bandwidth_matrix():
    m = load_machine("oracle-4node-mesh")
    assert not m.links
    res = build_resources(m)
    assert not any(n.startswith("cap") for n in res.names)
    assert res.route_names(2, 0) == ["mc 0", "link 0->2"]
    i = res.names.index("link 0->2")
    assert res.bandwidth_GBps[i] == pytest.approx(m.bandwidth_GBps[2][0])
    # one link per ordered pair of distinct nodes plus one controller per memory node
    assert len(res.names) == 4 * 3 + 4


def test_snc_machine_shares_one_upi_link():
    """skx-2s-snc2: every cross-socket flow crosses the one UPI link 0-2 (nodes 1 and 3
    reach it over their socket's mesh), so the sockets together get 62.4 GB/s of flits, not
    four times a pair's matrix entry."""
    res = build_resources(load_machine("skx-2s-snc2"))
    # the request message costs something only on the UPI link (the mesh links have no
    # protocol) and on the pair's cap; the data crosses mesh, UPI, mesh
    assert res.route_names(3, 1) == ["cap 3->1", "link 2->0", "mc 1", "cap 1->3", "link 1->0",
                                     "link 0->2", "link 2->3"]
    assert res.route_names(0, 1) == ["mc 1", "cap 1->0", "link 1->0"]  # on-die: no protocol


def test_multi_hop_route_takes_fewest_hops_lowest_id():
    res = build_resources(load_machine("opteron-4s-2004"))  # ring 0-1-3-2-0
    assert res.route_names(3, 0) == ["mc 0", "cap 0->3", "link 0->1", "link 1->3"]
    assert res.route_names(0, 3, write=True) == ["cap 0->3", "link 0->1", "link 1->3", "mc 3"]


def test_disconnected_links_fall_back_to_the_matrix_with_a_note():
    m = make_machine("split", [Node(0, (0,), 1 << 30), Node(1, (1,), 1 << 30),
                               Node(2, (2,), 1 << 30)],
                     links=[Link(0, 1, 10.0)])
    res = build_resources(m)
    assert res.route_names(2, 0) == ["mc 0", "cap 0->2"]
    assert any("node 0 to node 2" in n for n in res.notes)


def test_memoryless_node_has_no_controller():
    m = make_machine("cpuless", [Node(0, (0, 1), 1 << 30), Node(1, (2, 3), 0)])
    res = build_resources(m)
    assert res.mc_of_node[1] == -1
    assert res.route_names(1, 0) == ["mc 0", "link 0->1"]


def test_asymmetric_link_gives_each_direction_its_bandwidth():
    nodes = (Node(0, (0,), 1 << 30), Node(1, (1,), 1 << 30))
    m = make_machine("asym-link", nodes, links=(Link(0, 1, 10.0, 0.0, 40.0),))
    res = build_resources(m)
    assert res.bandwidth_GBps[res.names.index("link 0->1")] == pytest.approx(10.0)
    assert res.bandwidth_GBps[res.names.index("link 1->0")] == pytest.approx(40.0)
    # a read by node 0's CPUs from node 1 comes back over link 1->0
    assert "link 1->0" in res.route_names(0, 1)
