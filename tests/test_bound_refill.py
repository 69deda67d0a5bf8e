"""The fast engine's miss-slot ring (numasim.machine.bound._refill): after every refill the
slots, read from the returned head, are the old ones minus the first to free plus the new
completion, sorted -- on both of its paths (the branch-free merge up to REFILL_MERGE_MAX
slots, the walk beyond)."""

import numpy as np
import pytest

from numasim.machine import bound as B


@pytest.mark.parametrize("n", [1, 2, 3, 10, 16, B.REFILL_MERGE_MAX, B.REFILL_MERGE_MAX + 1])
def test_refill_keeps_the_ring_sorted_with_the_new_completion(n):
    rng = np.random.default_rng(n)
    sl = np.sort(rng.uniform(0.0, 100.0, n))
    want = sl.copy()
    sh = 0
    for _ in range(2000):
        head = sl[sh]
        x = rng.random()
        if x < 0.2:
            done = float(sl[(sh + rng.integers(n)) % n])  # a tie with a slot
        elif x < 0.3:
            done = head  # completes as the first slot frees
        else:
            done = head + rng.uniform(0.0, 60.0)
        want = np.sort(np.concatenate([want[1:], [done]]))
        sh = B._refill(sl, sh, done)
        assert 0 <= sh < n
        got = np.array([sl[(sh + k) % n] for k in range(n)])
        np.testing.assert_array_equal(got, want)
