"""Per-identity limits kept in Redis: the only module that imports `redis`.

RedisLimitStore(url, *, prefix, timeout_s)
    take_token(identity, rate_per_s, burst) -> float | None    one script call (TAKE_TOKEN)
    take_lease(identity, lease_id, most, ttl_s) -> bool         one script call (TAKE_LEASE)
    drop_lease(identity, lease_id)                               one ZREM
    renew_leases([(identity, lease_id), ...], ttl_s)             one script call per RENEW_CHUNK leases
    check()                                                      PING and load the scripts

Each raises LimitStoreUnavailable, and nothing else, when Redis cannot answer in time or answers
with an error: the caller then falls back to local limits. There are no retries here (redis-py's
default retries and backoff would multiply the latency of an outage); socket timeouts are short.

Keys: `{prefix}rate:{identity}` (a token bucket) and `{prefix}leases:{identity}` (in-flight leases),
so that deployments (and test runs) sharing one Redis keep apart by prefix.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence

import redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from civicscore.limits.scripts import RENEW_LEASES, TAKE_LEASE, TAKE_TOKEN

__all__ = ["REDIS_SCHEMES", "LimitStoreUnavailable", "RedisLimitStore", "redacted_url"]

REDIS_SCHEMES = ("redis", "rediss", "unix")
RENEW_CHUNK = 500  # leases renewed per script call: one call must not hold Redis for long


class LimitStoreUnavailable(Exception):
    """Redis did not answer in time, refused the connection, or answered with an error."""


def redacted_url(url: str) -> str:
    """`url` without its password, for logs."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


class RedisLimitStore:
    """Token buckets and in-flight leases in one Redis, under one key prefix."""

    def __init__(self, url: str, *, prefix: str, timeout_s: float) -> None:
        """Raises ValueError for a URL that is not redis://, rediss:// or unix:// (nothing is connected yet)."""
        if urllib.parse.urlsplit(url).scheme not in REDIS_SCHEMES:
            raise ValueError(f"{redacted_url(url)} is not a Redis URL: use redis://host:port/db")
        self.url = redacted_url(url)
        self._prefix = prefix
        self._client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0),
            health_check_interval=0, client_name="civicscore-limits")
        self._take_token = self._client.register_script(TAKE_TOKEN)
        self._take_lease = self._client.register_script(TAKE_LEASE)
        self._renew_leases = self._client.register_script(RENEW_LEASES)

    def rate_key(self, identity: str) -> str:
        return f"{self._prefix}rate:{identity}"

    def lease_key(self, identity: str) -> str:
        return f"{self._prefix}leases:{identity}"

    def take_token(self, identity: str, rate_per_s: float, burst: int) -> float | None:
        """None when `identity` may make a call now (a token was taken); else the seconds until it may."""
        try:
            wait_us = int(self._take_token(keys=[self.rate_key(identity)], args=[repr(float(rate_per_s)), burst]))
        except (RedisError, OSError, ValueError) as error:
            raise LimitStoreUnavailable(_describe(error)) from error
        return None if wait_us <= 0 else wait_us / 1e6

    def take_lease(self, identity: str, lease_id: str, most: int, ttl_s: float) -> bool:
        """Whether `identity` held fewer than `most` live leases, and now holds `lease_id` for `ttl_s`."""
        try:
            taken = int(self._take_lease(keys=[self.lease_key(identity)], args=[lease_id, most, _ms(ttl_s)]))
        except (RedisError, OSError, ValueError) as error:
            raise LimitStoreUnavailable(_describe(error)) from error
        return taken == 1

    def drop_lease(self, identity: str, lease_id: str) -> None:
        """Give a lease back (a lease already gone, expired or never taken, is no error)."""
        try:
            self._client.zrem(self.lease_key(identity), lease_id)
        except (RedisError, OSError) as error:
            raise LimitStoreUnavailable(_describe(error)) from error

    def renew_leases(self, leases: Sequence[tuple[str, str]], ttl_s: float) -> int:
        """Push the expiry of each (identity, lease id) that is still held to now + `ttl_s`; how many were."""
        renewed = 0
        try:
            for start in range(0, len(leases), RENEW_CHUNK):
                chunk = leases[start:start + RENEW_CHUNK]
                renewed += int(self._renew_leases(keys=[self.lease_key(identity) for identity, _ in chunk],
                                                  args=[_ms(ttl_s), *(lease for _, lease in chunk)]))
        except (RedisError, OSError, ValueError) as error:
            raise LimitStoreUnavailable(_describe(error)) from error
        return renewed

    def check(self) -> None:
        """Raise LimitStoreUnavailable unless Redis answers and holds the scripts (loaded again after a
        restart of Redis, which forgets them)."""
        try:
            self._client.ping()
            for script in (self._take_token, self._take_lease, self._renew_leases):
                script.sha = str(self._client.script_load(script.script))
        except (RedisError, OSError) as error:
            raise LimitStoreUnavailable(_describe(error)) from error

    def close(self) -> None:
        self._client.close()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
