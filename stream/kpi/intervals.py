"""95% confidence intervals used by the KPIs.

Wilson score interval for a proportion p = x/n, z = 1.959964:
    centre = (p + z²/2n) / (1 + z²/n),  half = z/(1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

Adjusted Wald interval for NPS (contract): n' = n + 3, p = (P + 0.75)/n', d = (D + 0.75)/n',
    centre = p - d,  variance = (p + d - (p - d)²)/n',  bounds = 100 * (centre ± z*sqrt(variance)),
clipped to [-100, 100].
"""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float]:
    if n <= 0:
        raise ValueError("wilson interval needs n > 0")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # min/max with p: rounding must not push a bound past the ratio itself (x = 0 or x = n)
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


def nps_adjusted_wald(
    promoters: float, detractors: float, n: float, z: float = Z95
) -> tuple[float, float]:
    n_adj = n + 3
    p = (promoters + 0.75) / n_adj
    d = (detractors + 0.75) / n_adj
    centre = p - d
    half = z * math.sqrt(max(0.0, p + d - centre * centre) / n_adj)
    return max(-100.0, 100 * (centre - half)), min(100.0, 100 * (centre + half))
