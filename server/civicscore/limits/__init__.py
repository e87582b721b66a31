"""Per-identity limits that hold across replicas: Redis when configured, local limits otherwise or meanwhile.

    options      the command-line options and SharedLimitsConfig; build_limits()
    shared       SharedLimits: the circuit breaker between Redis and the local limiters, lease renewals
    redis_store  RedisLimitStore: the only module that talks to Redis
    scripts      the Lua scripts (token bucket, leases), atomic and on Redis time
    forwarded    the client's address behind a trusted proxy, for refusal logs

The local limiters themselves (and RefusalHold) are in civicscore.ratelimit.
"""

from civicscore.limits.forwarded import TrustedProxies, forwarded_client
from civicscore.limits.options import SharedLimitsConfig, add_arguments, build_limits, config_from_arguments
from civicscore.limits.redis_store import LimitStoreUnavailable, RedisLimitStore
from civicscore.limits.shared import LimitsState, SharedLimits, Slot

__all__ = [
    "LimitStoreUnavailable",
    "LimitsState",
    "RedisLimitStore",
    "SharedLimits",
    "SharedLimitsConfig",
    "Slot",
    "TrustedProxies",
    "add_arguments",
    "build_limits",
    "config_from_arguments",
    "forwarded_client",
]
