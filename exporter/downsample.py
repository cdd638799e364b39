"""How a long series of points is cut into at most ``cap`` bins of consecutive points.

Shared by the live page's history (``status``, served over HTTP) and the replay report's charts
(``offline.svg``, written to a file): both draw a bounded number of points from a series of any
length, and neither side should import the other to do it.
"""

from __future__ import annotations

import itertools


def bins(n: int, cap: int) -> list[range]:
    """Consecutive index ranges covering ``range(n)``, at most ``cap`` of them, as even as can
    be; each index on its own when ``n <= cap``."""
    if n <= cap:
        return [range(i, i + 1) for i in range(n)]
    edges = [n * k // cap for k in range(cap + 1)]
    return [range(a, b) for a, b in itertools.pairwise(edges) if b > a]
