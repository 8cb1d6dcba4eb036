"""Basket files with a planted pattern, shared by the offline evaluation tests."""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["planted_baskets"]


def planted_baskets(tmp_path: Path) -> Path:
    """Each of 60 users alternates two baskets; the next basket is the one after the
    last, which top-frequency cannot see but recency-aware methods can."""
    rng = random.Random(3)
    lines = ["order_id,user_id,product_id,order_number"]
    for u in range(60):
        even = [f"p{rng.randrange(40)}" for _ in range(3)]
        odd = [f"q{rng.randrange(40)}" for _ in range(3)]
        for n in range(1, 10 + u % 4):
            for p in set(even if n % 2 == 0 else odd):
                lines.append(f"u{u}-{n},u{u},{p},{n}")
    f = tmp_path / "baskets.csv"
    f.write_text("\n".join(lines) + "\n")
    return f
