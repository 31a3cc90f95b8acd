"""The Lua scripts of the Redis store: each one is a step that must be atomic.

Rules these scripts keep:

* They touch the keys they are given (``KEYS``); the one exception is eviction (``_RETAIN``), which
  deletes the keys of the oldest items it drops, named from the prefix (no Redis Cluster anyway).
* Time comes from the Redis server (``TIME``), so that leases mean the same on every machine.
* A run's event with index ``i`` has the stream id ``0-(i+1)``: a reader resumes from any index with
  ``XRANGE`` and the next index is ``XLEN`` (streams are never trimmed).
* What a waiter in another process may be waiting for is announced on the run's channel (``PUBLISH``),
  after it is written, once that waiter has marked the run watched (see ``_ANNOUNCE``).
* What is kept once done with (a finished run, a session, a resource, an idempotency key) is an *item*,
  counted against ``max_retained_bytes`` by the memory Redis reports for its keys (``MEMORY USAGE``)
  plus its bookkeeping; the script that writes an item trims the oldest until the total fits (see
  ``_RETAIN``). Runs still going are no items: they are never evicted.
"""

from __future__ import annotations

__all__ = [
    "APPEND_EVENTS",
    "CLAIM_KEY",
    "CLAIM_SESSION",
    "CREATE_ENDED_RUN",
    "CREATE_RUN",
    "EXTEND_SESSION",
    "FIND_LOST_RUNS",
    "GET_RUN",
    "PUT_RESOURCE",
    "PUT_SESSION",
    "READ_EVENTS",
    "RENEW_LEASES",
    "SEND_SIGNAL",
    "UPDATE_RUN",
]

_NOW_MS = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

#: ``announce(run hash, channel, count)``: publish a run's new event count on its channel, if anyone
#: listens. A reader in another process that waits on a run marks its hash ``~watched`` once its
#: subscription is live (``READ_EVENTS``), then looks at the events: whatever is written before the
#: mark it reads, whatever after is announced. Runs nobody watches from afar (their stream is read by the
#: process executing them, woken in-process) publish nothing.
_ANNOUNCE = """
local function announce(run, channel, count)
  if redis.call('HEXISTS', run, '~watched') == 1 then redis.call('PUBLISH', channel, count) end
end
"""

#: ``snapshot(run hash, skip)``: the run as one JSON document built from its fields (one JSON value each),
#: and its owner (false: none); the caller parses one string rather than a reply per field. The fields
#: named in ``skip`` (a table name -> true, or nil) are left out: the caller has just written them.
_SNAPSHOT = """
local function snapshot(run, skip)
  local flat = redis.call('HGETALL', run)
  local members, owner = {}, false
  for i = 1, #flat, 2 do
    local name = flat[i]
    if string.sub(name, 1, 1) ~= '~' and not (skip and skip[name]) then
      members[#members + 1] = '"' .. name .. '":' .. flat[i + 1]
    elseif name == '~owner' then
      owner = flat[i + 1]
    end
  end
  return {'{' .. table.concat(members, ',') .. '}', owner}
end
"""

#: What an item costs beyond its keys: its entries in the ``retained`` sorted set and the ``sizes`` hash
#: (measured at ~280 bytes with a 45-character member, growing with the member's length), and for a run
#: its entry in ``finished``.
BOOKKEEPING_BYTES = 200
RUN_BOOKKEEPING_BYTES = 160

#: The retention of the items: define ``book`` and the functions ``usage``, ``retain`` and ``trim``.
#: Every script that includes it (after ``_NOW_MS``) has the bookkeeping keys last in ``KEYS``:
#:
#: * ``retained``, a sorted set: item -> when its keys expire, in µs (items written in the same
#:   millisecond keep their order);
#: * ``sizes``, a hash: item -> bytes it is counted for, and ``total``;
#: * ``finished``, a sorted set: run id -> when it ended, in ms;
#:
#: and the bookkeeping arguments first in ``ARGV``: key prefix, max retained bytes, max finished runs,
#: retention ms. An item is named by its key without the prefix (``run:<id>``, ``session:<id>``,
#: ``resource:<id>``, ``key:<key>``): eviction deletes the keys that name starts.
_RETAIN = f"""
local book = {{
  retained = KEYS[#KEYS - 2], sizes = KEYS[#KEYS - 1], finished = KEYS[#KEYS], prefix = ARGV[1],
  max_bytes = tonumber(ARGV[2]), max_runs = tonumber(ARGV[3]), retention = tonumber(ARGV[4]),
}}

-- The bytes Redis uses for these keys (a missing key uses none).
local function usage(...)
  local bytes = 0
  for _, key in ipairs({{...}}) do
    bytes = bytes + (redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0') or 0)
  end
  return bytes
end

-- The server's clock in µs (``now`` is in ms).
local now_us = tonumber(clock[1]) * 1000000 + tonumber(clock[2])

-- Count an item as ``bytes`` (its keys' usage), kept ``ttl`` ms; again replaces its count.
local function retain(item, bytes, ttl)
  bytes = bytes + {BOOKKEEPING_BYTES} + 2 * #item
  if string.sub(item, 1, 4) == 'run:' then bytes = bytes + {RUN_BOOKKEEPING_BYTES} end
  local old = tonumber(redis.call('HGET', book.sizes, item)) or 0
  redis.call('HSET', book.sizes, item, bytes)
  redis.call('HINCRBY', book.sizes, 'total', bytes - old)
  redis.call('ZADD', book.retained, now_us + ttl * 1000, item)
end

-- Delete an item's keys and its bookkeeping; returns the bytes it was counted for.
local function forget(item)
  local bytes = tonumber(redis.call('HGET', book.sizes, item)) or 0
  redis.call('HDEL', book.sizes, item)
  redis.call('HINCRBY', book.sizes, 'total', -bytes)
  redis.call('ZREM', book.retained, item)
  local key = book.prefix .. item
  local kind = string.match(item, '^[^:]*')
  if kind == 'run' then
    redis.call('ZREM', book.finished, string.sub(item, 5))
    redis.call('DEL', key, key .. ':events', key .. ':signals')
  elseif kind == 'session' then
    redis.call('DEL', key, key .. ':history')
  elseif kind == 'resource' then
    redis.call('DEL', key, key .. ':owner')
  else
    redis.call('DEL', key)
  end
  return bytes
end

-- Drop what has expired (its keys are gone or going), the finished runs beyond ``max_runs``, then the
-- items that expire first until the total fits ``max_bytes`` (of equal lifetimes, the oldest first).
local function trim()
  for _, item in ipairs(redis.call('ZRANGEBYSCORE', book.retained, '-inf', now_us, 'LIMIT', 0, 1000)) do
    forget(item)
  end
  redis.call('ZREMRANGEBYSCORE', book.finished, '-inf', now - book.retention)
  local excess = redis.call('ZCARD', book.finished) - book.max_runs
  if excess > 0 then
    for _, run in ipairs(redis.call('ZRANGE', book.finished, 0, excess - 1)) do forget('run:' .. run) end
  end
  local total = tonumber(redis.call('HGET', book.sizes, 'total')) or 0
  while total > book.max_bytes do
    local oldest = redis.call('ZRANGE', book.retained, 0, 0)[1]
    if not oldest then break end
    total = total - forget(oldest)
  end
end
"""

#: KEYS: run hash, events stream, leases zset.
#: ARGV: run id, ttl ms, lease ms, number of events (its first ones: ``run.created``, and those of a
#: move made at once), their type, data, ..., then field, value, ... (the run as it is after them).
CREATE_RUN = (
    _NOW_MS
    + """
redis.call('DEL', KEYS[1], KEYS[2])
local fields = 5 + 2 * tonumber(ARGV[4])
redis.call('HSET', KEYS[1], unpack(ARGV, fields))
for i = 5, fields - 1, 2 do
  redis.call('XADD', KEYS[2], '0-' .. ((i - 3) / 2), 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])
return 1
"""
)

#: KEYS: run hash, events stream, signals list, then the bookkeeping (see ``_RETAIN``).
#: ARGV: the bookkeeping, run id, retention ms, number of events, their type, data, ..., then field,
#: value, ... (the run as it ended). A run created already ended (a short run written once, at its end):
#: ``CREATE_RUN`` and the ending of ``UPDATE_RUN`` in one step; no lease, and it is an item at once.
CREATE_ENDED_RUN = (
    _NOW_MS
    + _RETAIN
    + """
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local fields = 8 + 2 * tonumber(ARGV[7])
redis.call('HSET', KEYS[1], unpack(ARGV, fields))
for i = 8, fields - 1, 2 do
  redis.call('XADD', KEYS[2], '0-' .. ((i - 6) / 2), 't', ARGV[i], 'd', ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
redis.call('ZADD', book.finished, now, ARGV[5])
retain('run:' .. ARGV[5], usage(KEYS[1], KEYS[2], KEYS[3]), tonumber(ARGV[6]))
trim()
return 1
"""
)

#: KEYS: run hash, events stream, signals list, leases zset, then the bookkeeping (see ``_RETAIN``).
#: ARGV: the bookkeeping, run id, ttl ms, terminal ("1" when the change ends the run), events channel,
#:       number of queued events, their type, data, ...,
#:       number of queued field arguments, field, value, ...,
#:       number of expected statuses (-1: any), expected status, ...,
#:       number of field arguments, field, value, ..., then events to append: type, data, ...
#: The queued events and fields (appended or set before, still written behind) are written whatever the
#: status; the change and its events only if the status matched. Only a change that ends the run sets
#: the TTL of its keys (to the retention): a run still going keeps the TTL its creation gave it, renewed
#: with its lease.
#: Returns false when there is no such run; else the length of its events stream once written, then, if
#: the status matched, the run (see ``_SNAPSHOT``) without the fields this script set (the caller has
#: them: the output at the end of a long stream is large). A run that ends becomes an item (and may,
#: alone over the bound, be evicted at once: it is still returned).
UPDATE_RUN = (
    _NOW_MS
    + _RETAIN
    + _ANNOUNCE
    + _SNAPSHOT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local n = redis.call('XLEN', KEYS[2])
local appended = false
local function append(first, last)
  for i = first, last, 2 do
    n = n + 1
    redis.call('XADD', KEYS[2], '0-' .. n, 't', ARGV[i], 'd', ARGV[i + 1])
    appended = true
  end
end
local at = 10 + 2 * tonumber(ARGV[9])
append(10, at - 1)
local queued = tonumber(ARGV[at])
local written = {}
if queued > 0 then redis.call('HSET', KEYS[1], unpack(ARGV, at + 1, at + queued)) end
for i = at + 1, at + queued, 2 do written[ARGV[i]] = true end
at = at + 1 + queued
local expected = tonumber(ARGV[at])
if expected >= 0 then
  local status = redis.call('HGET', KEYS[1], 'status')
  local matched = false
  for i = at + 1, at + expected do
    if ARGV[i] == status then matched = true; break end
  end
  if not matched then
    if appended then announce(KEYS[1], ARGV[8], n) end
    return {n}
  end
end
local first = at + 2 + math.max(expected, 0)
local last = first + tonumber(ARGV[first - 1]) - 1
if last >= first then redis.call('HSET', KEYS[1], unpack(ARGV, first, last)) end
for i = first, last, 2 do written[ARGV[i]] = true end
append(last + 1, #ARGV)
if appended then announce(KEYS[1], ARGV[8], n) end
local run = snapshot(KEYS[1], written)
if ARGV[7] == '1' then
  for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[6]) end
  redis.call('ZREM', KEYS[4], ARGV[5])
  redis.call('ZADD', book.finished, now, ARGV[5])
  retain('run:' .. ARGV[5], usage(KEYS[1], KEYS[2], KEYS[3]), tonumber(ARGV[6]))
  trim()
end
return {n, run[1], run[2]}
"""
)

#: KEYS: run hash. Returns the run (see ``_SNAPSHOT``), or false when there is none.
GET_RUN = (
    _SNAPSHOT
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
return snapshot(KEYS[1])
"""
)

#: KEYS: events stream, run hash. ARGV: events channel, the events packed in one string (see
#: ``codec.pack_events``: per event, the lengths of its type and data as big-endian 2 and 4 bytes, then
#: both; one argument for a batch costs the client much less than two per event).
#: Appends nothing to a run that is gone (so that no stream is left without a TTL); returns the stream's
#: length (-1: the run is gone).
APPEND_EVENTS = (
    _ANNOUNCE
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local n = redis.call('XLEN', KEYS[1])
local packed, at = ARGV[2], 1
while at <= #packed do
  local size, length, body = struct.unpack('>I2I4', packed, at)
  local data = body + size
  n = n + 1
  redis.call('XADD', KEYS[1], '0-' .. n, 't', string.sub(packed, body, data - 1),
             'd', string.sub(packed, data, data + length - 1))
  at = data + length
end
announce(KEYS[2], ARGV[1], n)
return n
"""
)

#: KEYS: events stream, run hash. ARGV: first stream id, "1" to mark the run watched (see
#: ``_ANNOUNCE``: the caller's subscription to its channel is live). Returns false when the run is gone,
#: else its events from there (``XRANGE``, unparsed: ``{{id, {"t", type, "d", data}}, ...}``).
READ_EVENTS = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('HSET', KEYS[2], '~watched', '1') end
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

_SESSION_ARGS = """
-- ARGV after the bookkeeping: ttl ms, session id, has owner ("1"/"0"), owner, has state, state, url, ...
local ttl, id = tonumber(ARGV[5]), ARGV[6]
local owner, state = ARGV[7] == '1' and ARGV[8], ARGV[9] == '1' and ARGV[10]  -- false: none

local function append_history()
  for i = 11, #ARGV, 1000 do redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV))) end
end

local function read_session()
  return {redis.call('HGETALL', KEYS[1]), redis.call('LRANGE', KEYS[2], 0, -1)}
end

-- Refresh the session's TTL and count it again.
local function keep_session()
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  retain('session:' .. id, usage(KEYS[1], KEYS[2]), ttl)
end

-- Write the session anew (no owner: no ``owner`` field).
local function write_session()
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('HSET', KEYS[1], 'id', id)
  if owner then redis.call('HSET', KEYS[1], 'owner', owner) end
  if state then redis.call('HSET', KEYS[1], 'state', state) end
  append_history()
  keep_session()
end
"""

#: KEYS: session hash, history list, then the bookkeeping. ARGV: see ``_SESSION_ARGS``.
#: Creates the session unless it exists; returns false when it created it, else {fields, history}.
CLAIM_SESSION = (
    _NOW_MS
    + _RETAIN
    + _SESSION_ARGS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return read_session() end
write_session()
trim()
return false
"""
)

#: KEYS: session hash, history list, then the bookkeeping. ARGV: see ``_SESSION_ARGS``.
#: Replaces the session (its owner, history and state).
PUT_SESSION = (
    _NOW_MS
    + _RETAIN
    + _SESSION_ARGS
    + """
write_session()
trim()
return 1
"""
)

#: KEYS: session hash, history list, then the bookkeeping. ARGV: see ``_SESSION_ARGS``.
#: Appends history (and sets the state, if given) to a session of the same owner, creating it if new;
#: returns false and writes nothing when it belongs to another owner, else {fields, history}.
EXTEND_SESSION = (
    _NOW_MS
    + _RETAIN
    + _SESSION_ARGS
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'owner') ~= owner then return false end
else
  redis.call('HSET', KEYS[1], 'id', id)
  if owner then redis.call('HSET', KEYS[1], 'owner', owner) end
end
if state then redis.call('HSET', KEYS[1], 'state', state) end
append_history()
keep_session()
local session = read_session()
trim()
return session
"""
)

#: KEYS: resource, its owner, then the bookkeeping. ARGV: the bookkeeping, ttl ms, resource id, data,
#: owner ("" and no owner key when it has none: ARGV[8] says which, "1"/"0").
PUT_RESOURCE = (
    _NOW_MS
    + _RETAIN
    + """
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[5])
if ARGV[8] == '1' then
  redis.call('SET', KEYS[2], ARGV[9], 'PX', ARGV[5])
else
  redis.call('DEL', KEYS[2])
end
retain('resource:' .. ARGV[6], usage(KEYS[1], KEYS[2]), tonumber(ARGV[5]))
trim()
return 1
"""
)

#: KEYS: the key, then the bookkeeping. ARGV: the bookkeeping, ttl ms, item name, value.
#: Returns the value already held, or false when this call stored it.
CLAIM_KEY = (
    _NOW_MS
    + _RETAIN
    + """
local held = redis.call('GET', KEYS[1])
if held then return held end
redis.call('SET', KEYS[1], ARGV[7], 'PX', ARGV[5])
retain(ARGV[6], usage(KEYS[1]), tonumber(ARGV[5]))
trim()
return false
"""
)
