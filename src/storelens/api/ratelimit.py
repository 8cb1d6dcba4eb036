"""Sign-in throttles and rate limits, in memory or in Redis.

Sign-in uses :class:`LoginThrottle`: only failures count, and past ``free`` failures
each further one doubles the wait before the next attempt (up to a cap) instead of
locking the key out. An attempt is counted as a failure *before* the slow password
check (:meth:`LoginThrottle.attempt`, one atomic step) and given back on success: checked
first and counted after, parallel guesses all passed the check together (a review sent
64 at once and 32 reached the password check where 10 should have). Keys are
username + client address, so someone guessing from elsewhere slows only themselves
and never locks the owner out.

:class:`MemoryLimiter` is a plain window limiter: each key gets a window that opens
at its first attempt, so limits do not reset early at a clock boundary.

In memory is right for one process; with several API workers or hosts the counts
must be shared, so production points ``STORELENS_REDIS_URL`` at Redis.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Protocol

from storelens.core.errors import MissingExtra

log = logging.getLogger(__name__)

__all__ = [
    "Backoff",
    "LoginThrottle",
    "MemoryLimiter",
    "MemoryThrottle",
    "RateLimiter",
    "RedisLimiter",
    "RedisThrottle",
    "limiter_for",
    "throttle_for",
]


class RateLimiter(Protocol):
    def hit(self, key: str) -> bool:
        """Count one attempt; False once ``key`` is over its limit in this window."""
        ...

    def take(self, key: str) -> bool:
        """Count one attempt only while ``key`` is under its limit, in one atomic step:
        False (nothing counted) once it is at the limit, so refused attempts never add
        to the count and parallel ones cannot all pass the check (a review)."""
        ...

    def refund(self, key: str) -> None:
        """Give back one attempt that was counted and did not count after all."""
        ...

    def reset(self, key: str) -> None: ...


class MemoryLimiter:
    def __init__(
        self, limit: int, window_s: int = 60, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window_s, self.clock = limit, window_s, clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            for stale in [k for k, (t, _) in self._windows.items() if now - t >= self.window_s]:
                del self._windows[stale]
            start, count = self._windows.get(key, (now, 0))
            self._windows[key] = (start, count + 1)
        return count + 1 <= self.limit

    def take(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            start, count = self._windows.get(key, (now, 0))
            if now - start >= self.window_s:
                start, count = now, 0
            if count >= self.limit:
                return False
            self._windows[key] = (start, count + 1)
        return True

    def refund(self, key: str) -> None:
        with self._lock:
            if key in self._windows:
                start, count = self._windows[key]
                self._windows[key] = (start, max(0, count - 1))

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
        self._refund = self.client.register_script(_LOWER_LUA)
        self._take = self.client.register_script(_TAKE_LUA)
        self._redis_error = redis.RedisError

    def hit(self, key: str) -> bool:
        k = f"{self.prefix}:{key}"
        pipe = self.client.pipeline()
        pipe.incr(k)
        pipe.expire(k, self.window_s, nx=True)  # the window starts at the first attempt
        count, _ = pipe.execute()
        return int(count) <= self.limit

    def take(self, key: str) -> bool:
        """Fails open: with Redis unreachable the attempt passes, logged, since refusing
        every notice would stop the staff app for a limit's sake (a review found a 500)."""
        try:
            return bool(self._take(keys=[f"{self.prefix}:{key}"], args=[self.limit, self.window_s]))
        except self._redis_error as exc:
            log.warning("rate limit %s not counted, Redis unreachable: %s", self.prefix, exc)
            return True

    def refund(self, key: str) -> None:
        # DECR on a key that expired meanwhile would leave a -1 with no expiry: only an
        # existing count is lowered, inside Redis, so no other process sees it half done.
        try:
            self._refund(keys=[f"{self.prefix}:{key}"])
        except self._redis_error as exc:
            log.warning("rate limit %s not refunded, Redis unreachable: %s", self.prefix, exc)

    def reset(self, key: str) -> None:
        self.client.delete(f"{self.prefix}:{key}")


# TTL-then-EXPIRE rather than EXPIRE NX, which needs Redis 7.
_TAKE_LUA = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count >= tonumber(ARGV[1]) then return 0 end
redis.call('INCR', KEYS[1])
if redis.call('TTL', KEYS[1]) < 0 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
return 1
"""
_LOWER_LUA = """
if redis.call('EXISTS', KEYS[1]) == 1 and tonumber(redis.call('GET', KEYS[1])) > 0 then
  return redis.call('DECR', KEYS[1])
end
return 0
"""


def limiter_for(
    redis_url: str | None, limit: int, window_s: int = 60, prefix: str = "sl:rl"
) -> RateLimiter:
    if redis_url:
        return RedisLimiter(redis_url, limit, window_s, prefix)
    return MemoryLimiter(limit, window_s)


class Backoff:
    """``free`` failures cost nothing; then ``base_s``, doubling per failure, up to ``max_s``."""

    def __init__(self, base_s: float = 60.0, max_s: float = 900.0) -> None:
        self.base_s, self.max_s = base_s, max_s

    def delay(self, failures: int, free: int) -> float:
        if failures < free:
            return 0.0
        return min(self.max_s, self.base_s * 2.0 ** min(failures - free, 30))


class LoginThrottle(Protocol):
    def wait(self, key: str) -> float:
        """Seconds until ``key`` may try again (0: now)."""
        ...

    def failed(self, key: str, free: int) -> float:
        """Count a failure; the wait it imposes."""
        ...

    def succeeded(self, key: str) -> None: ...

    def attempt(self, key: str, free: int) -> float:
        """Reserve one attempt in one atomic step: 0.0 with the attempt already counted as
        a failure, or the wait still to run with nothing counted."""
        ...

    def refund(self, key: str, free: int) -> None:
        """Give back an attempt reserved by :meth:`attempt` that did not fail."""
        ...


class MemoryThrottle:
    def __init__(self, backoff: Backoff, clock: Callable[[], float] = time.time) -> None:
        self.backoff, self.clock = backoff, clock
        self._state: dict[str, tuple[int, float, float]] = {}  # failures, until, last
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        with self._lock:
            _, until, _ = self._state.get(key, (0, 0.0, 0.0))
        return max(0.0, until - self.clock())

    def failed(self, key: str, free: int) -> float:
        now = self.clock()
        forget = 2 * self.backoff.max_s
        with self._lock:
            for stale in [k for k, (_, _, last) in self._state.items() if now - last > forget]:
                del self._state[stale]
            failures = self._state.get(key, (0, 0.0, 0.0))[0] + 1
            delay = self.backoff.delay(failures, free)
            self._state[key] = (failures, now + delay, now)
        return delay

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._state.pop(key, None)

    def attempt(self, key: str, free: int) -> float:
        now = self.clock()
        with self._lock:
            failures, until, _ = self._state.get(key, (0, 0.0, 0.0))
            if until > now:
                return until - now
            delay = self.backoff.delay(failures + 1, free)
            self._state[key] = (failures + 1, now + delay, now)
        return 0.0

    def refund(self, key: str, free: int) -> None:
        with self._lock:
            failures, until, last = self._state.get(key, (0, 0.0, 0.0))
            if failures <= 1:
                self._state.pop(key, None)
            else:
                # the wait the refunded attempt imposed goes with it
                kept = until if self.backoff.delay(failures - 1, free) > 0 else 0.0
                self._state[key] = (failures - 1, kept, last)


# Both run inside Redis, so no two API processes can pass the check on one count.
_ATTEMPT_LUA = """
local now, free = tonumber(ARGV[1]), tonumber(ARGV[2])
local base, cap, ttl = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local till = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if till > now then return tostring(till - now) end
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
local delay = 0
if failures >= free then delay = math.min(cap, base * 2 ^ math.min(failures - free, 30)) end
redis.call('HSET', KEYS[1], 'until', tostring(now + delay))
redis.call('EXPIRE', KEYS[1], ttl)
return '0'
"""
_REFUND_LUA = """
local failures = redis.call('HINCRBY', KEYS[1], 'failures', -1)
if failures <= 0 then redis.call('DEL', KEYS[1])
elseif failures < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'until', '0') end
return failures
"""


class RedisThrottle:
    """Counts shared by every API process; entries expire once a key has been quiet."""

    def __init__(
        self,
        url: str,
        backoff: Backoff,
        clock: Callable[[], float] = time.time,
        prefix: str = "sl:login",
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingExtra("Redis rate limiting", "redis") from exc
        self.client = redis.Redis.from_url(url)
        self.backoff, self.clock, self.prefix = backoff, clock, prefix
        self._attempt = self.client.register_script(_ATTEMPT_LUA)
        self._refund = self.client.register_script(_REFUND_LUA)

    def wait(self, key: str) -> float:
        until = self.client.hget(f"{self.prefix}:{key}", "until")
        return max(0.0, float(until) - self.clock()) if until is not None else 0.0

    def failed(self, key: str, free: int) -> float:
        k = f"{self.prefix}:{key}"
        failures = int(self.client.hincrby(k, "failures", 1))
        delay = self.backoff.delay(failures, free)
        pipe = self.client.pipeline()
        pipe.hset(k, "until", self.clock() + delay)
        pipe.expire(k, math.ceil(2 * self.backoff.max_s))
        pipe.execute()
        return delay

    def succeeded(self, key: str) -> None:
        self.client.delete(f"{self.prefix}:{key}")

    def attempt(self, key: str, free: int) -> float:
        ttl = math.ceil(2 * self.backoff.max_s)
        wait = self._attempt(
            keys=[f"{self.prefix}:{key}"],
            args=[self.clock(), free, self.backoff.base_s, self.backoff.max_s, ttl],
        )
        return max(0.0, float(wait))

    def refund(self, key: str, free: int) -> None:
        self._refund(keys=[f"{self.prefix}:{key}"], args=[free])


def throttle_for(redis_url: str | None, backoff: Backoff) -> LoginThrottle:
    if redis_url:
        return RedisThrottle(redis_url, backoff)
    return MemoryThrottle(backoff)
