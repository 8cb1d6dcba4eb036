"""Fixed-window rate limits (login attempts), in memory or in Redis.

In memory is right for one process; with several API workers or hosts the counts
must be shared, so production points ``STORELENS_REDIS_URL`` at Redis.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

from storelens.core.errors import MissingExtra

__all__ = ["MemoryLimiter", "RateLimiter", "RedisLimiter", "limiter_for"]


class RateLimiter(Protocol):
    def hit(self, key: str) -> bool:
        """Count one attempt; False once ``key`` is over its limit in this window."""
        ...

    def reset(self, key: str) -> None: ...


class MemoryLimiter:
    def __init__(self, limit: int, window_s: int = 60) -> None:
        self.limit, self.window_s = limit, window_s
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        window = int(time.time() // self.window_s)
        with self._lock:
            for stale in [k for k in self._counts if k[1] < window]:
                del self._counts[stale]
            count = self._counts.get((key, window), 0) + 1
            self._counts[(key, window)] = count
        return count <= self.limit

    def reset(self, key: str) -> None:
        with self._lock:
            for k in [k for k in self._counts if k[0] == key]:
                del self._counts[k]


class RedisLimiter:
    def __init__(self, url: str, limit: int, window_s: int = 60, prefix: str = "sl:rl") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("Redis rate limiting", "redis") from exc
        self.client = redis.Redis.from_url(url)
        self.limit, self.window_s, self.prefix = limit, window_s, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}:{key}:{int(time.time() // self.window_s)}"

    def hit(self, key: str) -> bool:
        k = self._key(key)
        pipe = self.client.pipeline()
        pipe.incr(k)
        pipe.expire(k, self.window_s * 2)
        count, _ = pipe.execute()
        return int(count) <= self.limit

    def reset(self, key: str) -> None:
        self.client.delete(self._key(key))


def limiter_for(redis_url: str | None, limit: int, window_s: int = 60) -> RateLimiter:
    if redis_url:
        return RedisLimiter(redis_url, limit, window_s)
    return MemoryLimiter(limit, window_s)
