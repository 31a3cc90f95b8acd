"""The Lua scripts of the Redis store: each one is a step that must be atomic.

Rules these scripts keep:

* They touch only the keys they are given (``KEYS``), plus nothing: no key names built in Lua.
* Time comes from the Redis server (``TIME``), so that leases mean the same on every machine.
* A run's event with index ``i`` has the stream id ``0-(i+1)``: a reader resumes from any index with
  ``XRANGE`` and the next index is ``XLEN`` (streams are never trimmed).
* What a waiter may be waiting for is announced on the run's channel (``PUBLISH``), after it is written.
"""

from __future__ import annotations

__all__ = [
    "APPEND_EVENTS",
    "CREATE_RUN",
    "EXTEND_SESSION",
    "FIND_LOST_RUNS",
    "READ_EVENTS",
    "RENEW_LEASES",
    "SEND_SIGNAL",
    "UPDATE_RUN",
]

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

#: KEYS: run hash, events stream, leases zset.
#: ARGV: run id, ttl ms, lease ms, first event type, first event data, field, value, ...
CREATE_RUN = (
    _NOW_MS
    + """
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], unpack(ARGV, 6))
redis.call('XADD', KEYS[2], '0-1', 't', ARGV[4], 'd', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

#: KEYS: run hash, events stream, signals list, leases zset, finished zset.
#: ARGV: run id, ttl ms, terminal ("1" when the change ends the run), retention ms, events channel,
#:       number of expected statuses (-1: any), expected status, ...,
#:       number of field arguments, field, value, ..., then events to append: type, data, ...
#: Returns false (no such run, or its status did not match) or {fields and values, finished count}.
UPDATE_RUN = (
    """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local expected = tonumber(ARGV[6])
if expected >= 0 then
  local status = redis.call('HGET', KEYS[1], 'status')
  local matched = false
  for i = 7, 6 + expected do
    if ARGV[i] == status then matched = true; break end
  end
  if not matched then return false end
end
local first = 8 + math.max(expected, 0)
local last = first + tonumber(ARGV[first - 1]) - 1
if last >= first then redis.call('HSET', KEYS[1], unpack(ARGV, first, last)) end
if #ARGV > last then
  local n = redis.call('XLEN', KEYS[2])
  for i = last + 1, #ARGV, 2 do
    n = n + 1
    redis.call('XADD', KEYS[2], '0-' .. n, 't', ARGV[i], 'd', ARGV[i + 1])
  end
  redis.call('PUBLISH', ARGV[5], n)
end
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
local finished = 0
if ARGV[3] == '1' then
"""
    + _NOW_MS
    + """
  redis.call('ZREM', KEYS[4], ARGV[1])
  redis.call('ZADD', KEYS[5], now, ARGV[1])
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now - tonumber(ARGV[4]))
  finished = redis.call('ZCARD', KEYS[5])
end
return {redis.call('HGETALL', KEYS[1]), finished}
"""
)

#: KEYS: events stream. ARGV: events channel, type, data, type, data, ...
#: Appends nothing to a run that is gone (so that no stream is left without a TTL).
APPEND_EVENTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('XLEN', KEYS[1])
for i = 2, #ARGV, 2 do
  n = n + 1
  redis.call('XADD', KEYS[1], '0-' .. n, 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('PUBLISH', ARGV[1], n)
return n
"""

#: KEYS: events stream. ARGV: first stream id. Returns false when the run is gone, else its events from
#: there (``XRANGE``, unparsed: ``{{id, {"t", type, "d", data}}, ...}``).
READ_EVENTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return redis.call('XRANGE', KEYS[1], ARGV[1], '+')
"""

#: KEYS: run hash, signals list. ARGV: signal, ttl ms, home channel, run id.
#: The list keeps the signal until the executing worker takes it; the message (to every process: signals
#: are rare) only wakes it.
SEND_SIGNAL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

#: KEYS: leases zset, then per run: run hash, events stream, signals list.
#: ARGV: lease ms, ttl ms, worker, run id, ...  A run that is gone stays gone; only runs still in the
#: set (not finished) renew their lease; every run still there keeps its keys ``ttl`` longer.
RENEW_LEASES = (
    _NOW_MS
    + """
for i = 4, #ARGV do
  local run = 2 + (i - 4) * 3
  if redis.call('EXISTS', KEYS[run]) == 1 then
    redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i])
    redis.call('HSET', KEYS[run], '~worker', ARGV[3])
    for k = run, run + 2 do redis.call('PEXPIRE', KEYS[k], ARGV[2]) end
  end
end
return #ARGV - 3
"""
)

#: KEYS: leases zset. Returns the ids of the runs whose lease has lapsed.
FIND_LOST_RUNS = (
    _NOW_MS
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)
"""
)

#: KEYS: session hash, history list. ARGV: ttl ms, session id, owner ("" for none), has state
#: ("1"/"0"), state, history url, ...
#: Returns {hash fields and values, history}.
EXTEND_SESSION = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'id', ARGV[2])
  if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'owner', ARGV[3]) end
end
if ARGV[4] == '1' then redis.call('HSET', KEYS[1], 'state', ARGV[5]) end
for i = 6, #ARGV, 1000 do redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[1])
return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
"""
