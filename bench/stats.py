"""Benchmark: the stats stage, vectorised across dyads, against a per-dyad loop.

    .venv/bin/python bench/stats.py --dyads 100000 --sessions 20 --loop-dyads 2000

In one process and one run:

1. builds a synthetic scores table (BDI-II at intake and before every session, WAI-SR
   and WAI-S after every session, ~7 % missed sessions) with numpy;
2. times ``dyadflow.stats.compute`` on all dyads (wall time, peak RSS from
   ``resource.getrusage``);
3. times ``dyadflow.stats.compute`` on the first ``--loop-dyads`` dyads;
4. times a straightforward per-dyad loop on the same subset, computing the same
   per-dyad statistics the usual way (numpy for z-scores and detrending, statsmodels
   OLS for the lagged regression, scipy linregress / pearsonr for slopes and agreement,
   Python loops for sudden gains and ruptures), and prints time per dyad and the ratios.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dyadflow import stats  # noqa: E402
from dyadflow.core.registry import load_registry  # noqa: E402

ALLIANCE = {"patient": "wai_sr", "therapist": "wai_s"}


def synthetic_scores(n_dyads: int, n_sessions: int, seed: int = 1) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    s = np.arange(n_sessions + 1)
    d = n_dyads
    attended = rng.random((d, n_sessions + 1)) > 0.07
    attended[:, 0] = True
    dev = rng.normal(0, 0.4, (d, n_sessions + 1))
    pat = np.clip(rng.normal(3.7, 0.45, d)[:, None] + 0.03 * s + dev, 1, 5)
    th = np.clip(4.9 + 0.9 * (pat - 3.7) + rng.normal(0, 0.3, (d, n_sessions + 1)), 1, 7)
    bdi = np.clip(rng.normal(28, 7, d)[:, None] - 0.8 * s + rng.normal(0, 3, (d, n_sessions + 1)), 0, 63)
    bdi[:, 1:] -= 2.0 * (pat[:, :-1] - pat.mean(axis=1, keepdims=True))
    bdi = np.clip(np.rint(bdi), 0, 63)
    dyad = np.repeat(np.arange(d), n_sessions + 1)
    sess = np.tile(s, d)
    keep = attended.ravel()
    parts = []
    for inst, rater, values, from_session in (
        ("bdi_ii", "patient", bdi, 0),
        ("wai_sr", "patient", pat, 1),
        ("wai_s", "therapist", th, 1),
    ):
        m = keep & (sess >= from_session)
        parts.append(
            pl.DataFrame({"d": dyad[m], "session": sess[m].astype(np.int32), "score": values.ravel()[m]}).with_columns(
                pl.lit(inst).alias("instrument"), pl.lit(rater).alias("rater")
            )
        )
    df = pl.concat(parts)
    return (
        df.with_columns(
            pl.format("D{}", pl.col("d").cast(pl.String).str.zfill(6)).alias("dyad_id"),
            pl.format("P{}", pl.col("d").cast(pl.String).str.zfill(6)).alias("patient_id"),
            pl.format("T{}", (pl.col("d") % 500).cast(pl.String).str.zfill(3)).alias("therapist_id"),
            (pl.lit(np.datetime64("2024-01-08", "D")) + pl.duration(days=7 * pl.col("session")))
            .cast(pl.Date)
            .alias("date"),
            pl.when(pl.col("d") % 2 == 0).then(pl.lit("CBT")).otherwise(pl.lit("IPT")).alias("arm"),
            pl.lit("synthetic.csv").alias("source_file"),
            pl.int_range(pl.len()).alias("source_line"),
        )
        .drop("d")
        .sort("dyad_id", "session", "instrument")
    )


# ---------------------------------------------------------------- the per-dyad loop
def _z(x):
    sd = np.nanstd(x, ddof=1)
    return (x - np.nanmean(x)) / sd if sd > 0 else np.full_like(x, np.nan)


def loop_stats(scores: pl.DataFrame, rc: float) -> list[dict]:
    import statsmodels.api as sm
    from scipy import stats as sps

    out = []
    for (dyad,), g in scores.partition_by("dyad_id", as_dict=True, maintain_order=True).items():
        p = g.pivot(on="instrument", index="session", values="score").sort("session")
        sess = p.get_column("session").to_numpy().astype(float)
        pat, th, y = (
            p.get_column(c).to_numpy().astype(float) if c in p.columns else np.full(sess.size, np.nan)
            for c in ("wai_sr", "wai_s", "bdi_ii")
        )
        comp = np.nanmean(np.vstack([pat, th]), axis=0) if sess.size else sess
        zc, zy = _z(comp), _z(y)
        # detrend (as the stats stage computes it, for parity of work)
        for v in (pat, th, comp, y):
            ok = ~np.isnan(v)
            if ok.sum() >= 2:
                fit = sps.linregress(sess[ok], v[ok])
                _z(v - (fit.intercept + fit.slope * sess))
        nxt = np.full(sess.size, np.nan)
        consecutive = np.diff(sess) == 1
        nxt[:-1][consecutive] = zy[1:][consecutive]
        ok = ~np.isnan(zc) & ~np.isnan(nxt)
        res = {"dyad_id": dyad, "lag_b": None}
        if ok.sum() >= 3:
            fit = sm.OLS(nxt[ok], sm.add_constant(zc[ok], has_constant="add")).fit()
            res.update(lag_b=fit.params[1], lag_se=fit.bse[1], lag_p=fit.pvalues[1])
        for name, v in (("patient", pat), ("therapist", th)):
            okv = ~np.isnan(v)
            res[f"{name}_mean"] = np.nanmean(v) if okv.any() else None
            if okv.sum() >= 2:
                res[f"{name}_slope"] = sps.linregress(sess[okv], v[okv]).slope
        both = ~np.isnan(pat) & ~np.isnan(th)
        if both.sum() >= 3:
            res["agreement_r"] = sps.pearsonr(pat[both], th[both]).statistic
        obs = y[~np.isnan(y)]
        res["rci"] = (obs[-1] - obs[0]) / (rc / 1.96) if obs.size >= 2 else None
        # sudden gains
        n_gains = 0
        for i in range(sess.size - 1):
            if sess[i + 1] != sess[i] + 1 or np.isnan(y[i]) or np.isnan(y[i + 1]):
                continue
            drop = y[i] - y[i + 1]
            if drop >= rc and drop >= 0.25 * y[i]:
                pre = [
                    y[j] for j in range(i - 2, i + 1) if j >= 0 and sess[i] - sess[j] == i - j and not np.isnan(y[j])
                ]
                post = [
                    y[j]
                    for j in range(i + 1, i + 4)
                    if j < sess.size and sess[j] - sess[i] == j - i and not np.isnan(y[j])
                ]
                if len(pre) >= 2 and len(post) >= 2:
                    dfree = len(pre) + len(post) - 2
                    pooled = np.sqrt(
                        ((len(pre) - 1) * np.var(pre, ddof=1) + (len(post) - 1) * np.var(post, ddof=1)) / dfree
                    )
                    if np.mean(pre) - np.mean(post) > sps.t.ppf(0.975, dfree) * pooled:
                        n_gains += 1
        res["n_sudden_gains"] = n_gains
        # ruptures
        n_rup = 0
        for v in (pat, th):
            okv = ~np.isnan(v)
            vs = v[okv]
            sd = np.std(vs, ddof=1) if vs.size >= 2 else 0
            for i in range(1, vs.size):
                if sd > 0 and vs[i - 1] - vs[i] >= 1.5 * sd:
                    n_rup += 1
        res["n_ruptures"] = n_rup
        out.append(res)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dyads", type=int, default=100_000)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--loop-dyads", type=int, default=2000)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=RuntimeWarning)  # all-NaN slices in the loop baseline
    registry = load_registry()

    t0 = time.perf_counter()
    scores = synthetic_scores(args.dyads, args.sessions)
    t_gen = time.perf_counter() - t0
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"synthetic scores: {scores.height:,} rows, {args.dyads:,} dyads x {args.sessions} sessions ({t_gen:.1f} s, peak RSS so far {rss_data:.0f} MB)"
    )

    t0 = time.perf_counter()
    res = stats.compute(scores, registry, "bdi_ii", ALLIANCE, {})
    t_all = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"dyadflow stats, all dyads:   {t_all:8.2f} s  ({t_all / args.dyads * 1e6:8.1f} us per dyad); peak RSS {peak:.0f} MB"
    )
    print(
        f"  dyads {res.dyads.height:,}, sessions {res.sessions.height:,}, gains/losses {res.gains.height:,}, ruptures {res.ruptures.height:,}"
    )
    rc = res.cohort["change_rule"]["reliable_change_points"]

    subset_ids = res.dyads.get_column("dyad_id").head(args.loop_dyads)
    subset = scores.filter(pl.col("dyad_id").is_in(subset_ids.implode()))
    del res
    t0 = time.perf_counter()
    stats.compute(subset, registry, "bdi_ii", ALLIANCE, {})
    t_sub = time.perf_counter() - t0
    t0 = time.perf_counter()
    loop_stats(subset, rc)
    t_loop = time.perf_counter() - t0
    n = args.loop_dyads
    per_all, per_sub, per_loop = t_all / args.dyads, t_sub / n, t_loop / n
    print(f"dyadflow stats, {n:,} dyads:  {t_sub:8.2f} s  ({per_sub * 1e6:8.1f} us per dyad)")
    print(f"per-dyad loop, {n:,} dyads:   {t_loop:8.2f} s  ({per_loop * 1e6:8.1f} us per dyad)")
    print(
        f"ratio loop / vectorised per dyad: {per_loop / per_all:.0f}x (at {args.dyads:,} dyads), {per_loop / per_sub:.0f}x (same {n:,} dyads)"
    )


if __name__ == "__main__":
    main()
