"""The batched numpy helpers behind the per-dyad statistics, by hand."""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from dyadflow.stats import grouped

NAN = np.nan


def test_group_index_sums_means_and_shifts():
    df = pl.DataFrame({"d": ["A", "A", "B", "B", "B"], "r": ["p", "t", "p", "p", "t"]})
    g, n = grouped.group_index(df, "d")
    assert g.tolist() == [0, 0, 1, 1, 1] and n == 2
    g2, n2 = grouped.group_index(df, "d", "r")
    assert g2.tolist() == [0, 1, 2, 2, 3] and n2 == 4
    x = np.array([1.0, NAN, 2.0, 4.0, 6.0])
    assert grouped.group_sum(x, g, n).tolist() == [1.0, 12.0]
    m, cnt = grouped.group_mean(x, g, n)
    assert m.tolist() == [1.0, 4.0] and cnt.tolist() == [1, 3]
    np.testing.assert_array_equal(grouped.group_shift(x, g, 1), [NAN, 1.0, NAN, 2.0, 4.0])
    np.testing.assert_array_equal(grouped.group_shift(x, g, -1), [NAN, NAN, 4.0, 6.0, NAN])
    np.testing.assert_array_equal(grouped.group_shift(x, g, -2), [NAN, NAN, 6.0, NAN, NAN])


def test_zscore_and_detrend():
    g = np.array([0, 0, 0, 1, 1, 2])
    x = np.array([1.0, 2.0, 3.0, 5.0, 5.0, 7.0])
    z = grouped.zscore(x, g, 3)
    np.testing.assert_allclose(z[:3], [-1, 0, 1])
    assert np.isnan(z[3:]).all()  # no variance; a single value
    t = np.array([1.0, 2.0, 4.0, 1.0, 2.0, 1.0])
    # 1, 2, 3 on 1, 2, 4: slope 9/14 (t mean 7/3); residuals by hand
    res = grouped.detrend(x, t, g, 3)
    slope = 9 / 14
    np.testing.assert_allclose(
        res[:3], [(1 - 2) - slope * (1 - 7 / 3), 0 - slope * (2 - 7 / 3), 1 - slope * (4 - 7 / 3)]
    )
    assert math.isclose(res[:3].sum(), 0, abs_tol=1e-12)
    assert grouped.column("c", np.array([1.0, NAN])).to_list() == [1.0, None]
