"""Rate limits (login attempts), in memory or in Redis.

Each key gets a window that opens at its first attempt, so limits do not reset
early at a clock boundary.

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
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            for stale in [k for k, (t, _) in self._windows.items() if now - t >= self.window_s]:
                del self._windows[stale]
            start, count = self._windows.get(key, (now, 0))
            self._windows[key] = (start, count + 1)
        return count + 1 <= self.limit

    def reset(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)


class RedisLimiter:
    def __init__(self, url: str, limit: int, window_s: int = 60, prefix: str = "sl:rl") -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("Redis rate limiting", "redis") from exc
        self.client = redis.Redis.from_url(url)
        self.limit, self.window_s, self.prefix = limit, window_s, prefix

    def hit(self, key: str) -> bool:
        k = f"{self.prefix}:{key}"
        pipe = self.client.pipeline()
        pipe.incr(k)
        pipe.expire(k, self.window_s, nx=True)  # the window starts at the first attempt
        count, _ = pipe.execute()
        return int(count) <= self.limit

    def reset(self, key: str) -> None:
        self.client.delete(f"{self.prefix}:{key}")


def limiter_for(redis_url: str | None, limit: int, window_s: int = 60) -> RateLimiter:
    if redis_url:
        return RedisLimiter(redis_url, limit, window_s)
    return MemoryLimiter(limit, window_s)
