"""Replications and confidence intervals: summary.csv.

A configuration is every results.csv column that describes the run (the setting's swept
keys, model, method, split, rate, trace, policy) - everything but the replication and the
measures. Per configuration and measure over its N replications:

    <measure>_mean     the sample mean
    <measure>_std      the sample standard deviation (N - 1 in the denominator; 0 when N = 1)
    <measure>_ci_low   mean - t(0.975, N - 1) * std / sqrt(N)    (95% Student-t interval;
    <measure>_ci_high  mean + t(0.975, N - 1) * std / sqrt(N)     equal to the mean when N = 1)

The interval is clipped to the values the measure can take (a time or a count >= 0, a reduction
<= 1, an accuracy in [0, 1]): with few replications t(0.975, N - 1) is large (12.7 at N = 2,
4.3 at N = 3) and the raw interval can leave that range.

Different replications draw their own seed and trace offset; the methods of one replication at
one rate share them (`points.network_seed`), so the reductions are paired comparisons.
"""
import math

import pandas as pd

BOUNDS = {"total_time_s": (0.0, math.inf), "reduction_vs_split_learning": (-math.inf, 1.0),
          "reduction_vs_full_cloud": (-math.inf, 1.0), "batches_dropped": (0.0, math.inf),
          "cloud_batches_trained": (0.0, math.inf), "final_accuracy": (0.0, 1.0), "early_exit_accuracy": (0.0, 1.0)}
MEASURES = ("total_time_s", "reduction_vs_split_learning", "reduction_vs_full_cloud", "batches_dropped",
            "cloud_batches_trained", "final_accuracy", "early_exit_accuracy")
CONFIGURATION = ("setting", "model", "method", "split", "uplink_mbps", "uplink_trace", "downlink_trace",
                 "trace_scale", "uplink_buffer_policy")


def student_t_975(df: int) -> float:
    """The 0.975 quantile of Student's t with `df` degrees of freedom (bisection on the exact CDF)."""
    low, high = 0.0, 1000.0
    for _ in range(200):
        middle = (low + high) / 2
        if t_cdf(middle, df) < 0.975:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def t_cdf(t: float, df: int) -> float:
    """P(T <= t) for t >= 0: 1 - I_x(df/2, 1/2) / 2 with x = df / (df + t^2)."""
    return 1.0 - 0.5 * incomplete_beta(df / (df + t * t), df / 2, 0.5)


def incomplete_beta(x: float, a: float, b: float) -> float:
    """The regularised incomplete beta function I_x(a, b), by its continued fraction (Lentz)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    if x > (a + 1) / (a + b + 2):
        return 1.0 - incomplete_beta(1 - x, b, a)
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)) / a
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return front * result


def confidence_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration of results.csv: `replications`, then mean, std and 95% CI of each measure."""
    keys = [c for c in CONFIGURATION if c in table.columns]
    swept = [c for c in table.columns if c not in keys and "." in c]  # a sweep's dotted key columns
    keys = ([k for k in ("setting",) if k in keys] + swept + [k for k in keys if k != "setting"])
    filled = {k: table[k].astype(object).where(table[k].notna(), "") for k in keys}  # NaN keys group together
    grouped = table.assign(**filled).groupby(keys, sort=False, dropna=False)
    rows = []
    for values, group in grouped:
        row = dict(zip(keys, values if isinstance(values, tuple) else (values,)))
        n = len(group)
        row["replications"] = n
        for measure in MEASURES:
            if measure not in group.columns:
                continue
            column = pd.to_numeric(group[measure], errors="coerce").dropna()
            if column.empty:
                row.update({f"{measure}_{stat}": math.nan for stat in ("mean", "std", "ci_low", "ci_high")})
                continue
            mean = float(column.mean())
            std = float(column.std(ddof=1)) if len(column) > 1 else 0.0
            half = student_t_975(len(column) - 1) * std / math.sqrt(len(column)) if len(column) > 1 else 0.0
            low, high = BOUNDS[measure]
            row.update({f"{measure}_mean": mean, f"{measure}_std": std, f"{measure}_ci_low": max(low, mean - half),
                        f"{measure}_ci_high": min(high, mean + half)})
        rows.append(row)
    return pd.DataFrame(rows)
