"""The command-line options and configuration of the shared limits (`--redis` and friends)."""

from __future__ import annotations

import argparse
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass

from civicscore.limits.forwarded import TrustedProxies
from civicscore.limits.redis_store import REDIS_SCHEMES, RedisLimitStore, redacted_url
from civicscore.limits.shared import LimitsState, SharedLimits
from civicscore.ratelimit import ConcurrencyLimiter, RateLimiter

__all__ = ["SharedLimitsConfig", "add_arguments", "build_limits", "config_from_arguments"]


@dataclass(frozen=True)
class SharedLimitsConfig:
    redis_url: str | None = None  # None: limits are local to each process
    prefix: str = "civicscore:"  # of every key, so that deployments (and tests) can share one Redis
    timeout_s: float = 0.25  # of each Redis command: the most an outage adds to a call
    lease_ttl_s: float = 10.0  # a dead replica's in-flight leases stop counting this long after it died
    retry_s: float = 3.0  # while in fallback, how often Redis is tried again
    trusted_proxies: tuple[str, ...] = ()  # whose x-forwarded-for names the client in refusal logs


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --redis, --redis-prefix, --redis-timeout, --redis-lease-ttl, --redis-retry and --trusted-proxy."""
    env = os.environ.get
    parser.add_argument("--redis", default=env("CIVICSCORE_REDIS") or None, metavar="URL",
                        help="keep per-identity rate and in-flight limits in this Redis (redis://host:6379/0), "
                             "shared by every replica; while it is unreachable each replica applies its own limits")
    parser.add_argument("--redis-prefix", default=env("CIVICSCORE_REDIS_PREFIX", "civicscore:"),
                        help="prefix of the Redis keys; one per deployment sharing a Redis (default %(default)s)")
    parser.add_argument("--redis-timeout", type=float, default=0.25, metavar="SECONDS",
                        help="timeout of each Redis command; past it the replica falls back to local limits "
                             "(default %(default)s)")
    parser.add_argument("--redis-lease-ttl", type=float, default=10.0, metavar="SECONDS",
                        help="lifetime of an in-flight lease, renewed every third of it while the call runs: a dead "
                             "replica's calls stop counting at most this long after it died (default %(default)s)")
    parser.add_argument("--redis-retry", type=float, default=3.0, metavar="SECONDS",
                        help="while Redis is unreachable, try it again this often (default %(default)s)")
    parser.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDRESS",
                        help="an IP address or network of a load balancer whose x-forwarded-for metadata names the "
                             "client in refusal logs (repeatable)")


def config_from_arguments(args: argparse.Namespace, parser: argparse.ArgumentParser) -> SharedLimitsConfig:
    """The configuration the parsed options give; exits through `parser.error` for a value out of range."""
    for flag, value in (("--redis-timeout", args.redis_timeout), ("--redis-lease-ttl", args.redis_lease_ttl),
                        ("--redis-retry", args.redis_retry)):
        if not value > 0:
            parser.error(f"{flag} must be greater than 0, not {value}")
    if args.redis_lease_ttl < 1:
        parser.error(f"--redis-lease-ttl must be at least 1 second, not {args.redis_lease_ttl}")
    if args.redis and urllib.parse.urlsplit(args.redis).scheme not in REDIS_SCHEMES:
        parser.error(f"--redis {redacted_url(args.redis)} is not a Redis URL: use redis://host:6379/0 "
                     "(or rediss:// for TLS, unix:///path/to/socket)")
    try:
        TrustedProxies(args.trusted_proxy)
    except ValueError as bad:
        parser.error(str(bad))
    return SharedLimitsConfig(redis_url=args.redis, prefix=args.redis_prefix, timeout_s=args.redis_timeout,
                              lease_ttl_s=args.redis_lease_ttl, retry_s=args.redis_retry,
                              trusted_proxies=tuple(args.trusted_proxy))


def build_limits(config: SharedLimitsConfig, *, rate_per_s: float, burst: int, max_in_flight: int,
                 on_change: Callable[[LimitsState], None]) -> SharedLimits:
    """The limits of one server: in Redis if configured (with local ones as the fallback), else local.
    Raises ValueError for a URL that is not a Redis URL; connects to nothing before `start()`."""
    store = (RedisLimitStore(config.redis_url, prefix=config.prefix, timeout_s=config.timeout_s)
             if config.redis_url else None)
    return SharedLimits(RateLimiter(rate_per_s, burst), ConcurrencyLimiter(max_in_flight), store,
                        lease_ttl_s=config.lease_ttl_s, retry_s=config.retry_s, on_change=on_change)
