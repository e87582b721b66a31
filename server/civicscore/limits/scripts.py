"""The Lua scripts that keep per-identity limits in Redis, each one atomic and one round trip.

Every script reads the time from Redis (`TIME`), never from the replica that calls it: replicas
whose clocks disagree still share one bucket and one lease clock. Redis 5 and later replicate a
script's effects rather than the script, so a script that reads `TIME` is safe on replicas and in
the append-only file.
"""

from __future__ import annotations

# KEYS[1]: one identity's bucket, a hash {tokens, stamp}; stamp in microseconds of Redis time.
# ARGV[1]: tokens added per second; ARGV[2]: the most tokens the bucket holds (the burst).
# Returns 0 when a token was taken, else the microseconds until the next token (at least 1).
# The same arithmetic as civicscore.ratelimit.RateLimiter: a refused call takes nothing and writes
# nothing; a call that finds a hair less than one token (float rounding) still gets it; Redis time
# that goes back (a failover to another Redis) counts as no time passing. A bucket idle long enough
# to be full again is the same as no bucket, so the key expires then.
TAKE_TOKEN = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1])
local stamp = tonumber(state[2])
if tokens == nil or stamp == nil then
  tokens = burst
  stamp = now
elseif now > stamp then
  tokens = math.min(burst, tokens + (now - stamp) * rate / 1000000)
  stamp = now
end
if tokens >= 1 - 1e-9 then
  tokens = math.max(0, tokens - 1)
  redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'stamp', string.format('%.17g', stamp))
  redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
  return 0
end
return math.max(1, math.ceil((1 - tokens) * 1000000 / rate))
"""

# KEYS[1]: one identity's leases, a sorted set of lease ids scored by their expiry (ms of Redis time).
# ARGV[1]: the new lease's id; ARGV[2]: the most leases the identity may hold; ARGV[3]: lease TTL (ms).
# Returns 1 when the lease was taken, 0 when the identity already holds the most it may.
# Expired leases (their replica died or lost Redis for longer than the TTL) are dropped first, so
# they stop counting at their expiry. The key itself lives twice the TTL after the last lease
# taken or renewed: a renewal that comes late (a replica stalled past the TTL) finds its lease
# still there and makes it count again, unless an admission check has dropped it meanwhile.
TAKE_LEASE = """
local ttl = tonumber(ARGV[3])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < 2 * ttl then
  redis.call('PEXPIRE', KEYS[1], 2 * ttl)
end
return 1
"""

# KEYS[i]: the lease set of ARGV[i + 1]; ARGV[1]: lease TTL (ms); ARGV[2..]: lease ids.
# Pushes each lease's expiry to now + TTL, only if the lease is still there (XX): a lease that
# expired while this replica could not reach Redis is not brought back, so a heartbeat can never
# resurrect a lease whose call has just ended. Returns how many leases were renewed.
RENEW_LEASES = """
local ttl = tonumber(ARGV[1])
local time = redis.call('TIME')
local expiry = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000) + ttl
local renewed = 0
for i, key in ipairs(KEYS) do
  renewed = renewed + redis.call('ZADD', key, 'XX', 'CH', expiry, ARGV[i + 1])
  if redis.call('PTTL', key) < 2 * ttl then
    redis.call('PEXPIRE', key, 2 * ttl)
  end
end
return renewed
"""
