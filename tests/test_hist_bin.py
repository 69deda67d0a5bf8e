"""The latency histogram's bin rule (numasim.machine.cpu.hist_bin) against its edges."""

import math

import numpy as np

from numasim.machine import cpu as C


def test_every_edge_opens_its_bin_and_the_float_below_closes_the_one_before():
    edges = C.hist_edges()
    for b in range(1, C.HIST_BINS):
        e = edges[b]
        assert C.hist_bin(e) == b, (b, e)
        # one ulp below 2**e: math.log2 rounded it up into the next octave
        assert C.hist_bin(float(np.nextafter(e, 0.0))) == b - 1, (b, e)


def test_random_latencies_fall_between_their_bins_edges():
    edges = C.hist_edges()
    rng = np.random.default_rng(7)
    for x in np.concatenate([rng.uniform(0, 1024, 2000), 2.0 ** rng.uniform(10, 50, 5000)]):
        b = C.hist_bin(float(x))
        assert edges[b] <= x < edges[b + 1], (x, b)


def test_out_of_range_latencies_are_clamped():
    assert C.hist_bin(-3.0) == 0
    assert C.hist_bin(math.nan) == 0
    assert C.hist_bin(2.0 ** 50) == C.HIST_BINS - 1
    assert C.hist_bin(2.0 ** 70) == C.HIST_BINS - 1
    assert C.hist_bin(math.inf) == C.HIST_BINS - 1
    assert C.hist_bin(1023.999) == 1023
