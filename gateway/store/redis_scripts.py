"""Lua scripts of the Redis store. Each touches keys of a single hash tag (Cluster-safe).

They run with EVALSHA through redis-py ``Script`` objects (reloaded on NOSCRIPT), or,
inside pipelines, through ``RedisStore._eval_batch`` (reload and replay on NOSCRIPT).
"""

from __future__ import annotations

# Atomic reservation of one attempt against a frequency cap.
# KEYS[1] attempts ZSET; ARGV: now_ms, window_ms, limit (-1: none), attempt_id, and
# optionally day_since_ms, day_limit (-1: none): also refused when day_limit attempts
# already have a score >= day_since_ms (a campaign's per-local-day house rule).
# Optional KEYS[2] prescreen token STRING (same hash tag), ARGV[7] its value, ARGV[8]
# its ttl_ms (ARGV[5], ARGV[6] then given too; day_limit -1: none): written when ok
# (prescreen.py).
# Optionally ARGV[9] = k further caps, then k pairs (window_ms, limit) from ARGV[10]
# (ARGV[5]-ARGV[8] then given too): also refused when one of them already has ``limit``
# attempts within its window (each no longer than ARGV[2]): a US state's 3 calls / 24 h
# layered over a longer federal cap, honoured in the same script.
# Returns {ok (0/1), attempts in the window (including this one when ok)}.
RESERVE = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local n = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then
  if KEYS[2] then redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[8]) end
  return {1, n}
end
local limit = tonumber(ARGV[3])
if limit >= 0 and n >= limit then
  return {0, n}
end
local day_limit = tonumber(ARGV[6] or '-1')
if day_limit >= 0 and redis.call('ZCOUNT', KEYS[1], ARGV[5], '+inf') >= day_limit then
  return {0, n}
end
local caps = tonumber(ARGV[9] or '0')
for i = 0, caps - 1 do
  local low = '(' .. (now - tonumber(ARGV[10 + 2 * i]))
  if redis.call('ZCOUNT', KEYS[1], low, '+inf') >= tonumber(ARGV[11 + 2 * i]) then
    return {0, n}
  end
end
redis.call('ZADD', KEYS[1], now, ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
if KEYS[2] then redis.call('SET', KEYS[2], ARGV[7], 'PX', ARGV[8]) end
return {1, n + 1}
"""

# RESERVE, then (when ok) the attempt in the campaign's pacing ZSET, in one call: one
# round trip per placed call instead of two. Plain Redis and Sentinel only: the
# campaign's key and the number's live in different Cluster slots (there RESERVE and a
# pipeline of the three pacing commands run one after the other, as before).
# KEYS[1] paced ZSET, then RESERVE's KEYS; ARGV[1] pacing window ms, then RESERVE's ARGV.
# Returns RESERVE's reply.
RESERVE_PACED = "local function reserve(KEYS, ARGV)\n" + RESERVE + """end
local r = reserve({unpack(KEYS, 2)}, {unpack(ARGV, 2)})
if r[1] == 1 then
  local now, pacing = tonumber(ARGV[2]), tonumber(ARGV[1])
  redis.call('ZADD', KEYS[1], now, ARGV[5])
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - pacing)
  redis.call('PEXPIRE', KEYS[1], pacing)
end
return r
"""

# One live-answered call, idempotent per call id.
# KEYS[1] answered ZSET, KEYS[2] abandoned ZSET; ARGV: call_id, at_ms, abandoned (1/0),
# retention_ms. Returns 1 when counted, 0 when the call id was already known.
RECORD_ANSWER = """
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
local at = tonumber(ARGV[2])
local retention = tonumber(ARGV[4])
redis.call('ZADD', KEYS[1], at, ARGV[1])
if ARGV[3] == '1' then
  redis.call('ZADD', KEYS[2], at, ARGV[1])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', at - retention)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', at - retention)
redis.call('PEXPIRE', KEYS[1], retention)
redis.call('PEXPIRE', KEYS[2], retention)
return 1
"""

# List metadata (one JSON value per list in the ``lists`` hash; see keys.py).
# KEYS[1] lists HASH; ARGV[1] op, ARGV[2] list name, then per op:
#   begin  now_ms                         -> hands out a new pending version
#   commit version mode size hash now_ms  -> replace: size; merge: size delta
#   abort  version
#   ensure now_ms                         -> make sure a committed (possibly empty) version
#   adjust delta                          -> size += delta
#   expire cutoff_ms                      -> pending versions started before cutoff: aborted
# Returns {'OK', metadata JSON} or {'ERR', message}.
LIST_META = """
local raw = redis.call('HGET', KEYS[1], ARGV[2])
local m
if raw then
  m = cjson.decode(raw)
else
  m = {version=0, base=0, seq=0, imported_at=0, size=0, hash='', pending={}, aborted={}}
end
local function save()
  local out = cjson.encode(m)
  redis.call('HSET', KEYS[1], ARGV[2], out)
  return {'OK', out}
end
local function drop_pending(v)
  local found = false
  local kept = {}
  for _, p in ipairs(m.pending) do
    if p[1] == v then found = true else table.insert(kept, p) end
  end
  m.pending = kept
  return found
end
local op = ARGV[1]
if op == 'begin' then
  m.seq = m.seq + 1
  table.insert(m.pending, {m.seq, tonumber(ARGV[3])})
  return save()
elseif op == 'commit' then
  local v = tonumber(ARGV[3])
  if not drop_pending(v) then
    return {'ERR', 'import version ' .. v .. ' is no longer pending (expired or aborted)'}
  end
  if ARGV[4] == 'replace' then
    if v < m.version then
      table.insert(m.aborted, v)
      save()
      return {'ERR', 'import superseded: version ' .. m.version .. ' was committed meanwhile'}
    end
    m.base = v
    m.version = v
    m.size = tonumber(ARGV[5])
    local kept = {}
    for _, a in ipairs(m.aborted) do
      if a >= v then table.insert(kept, a) end
    end
    m.aborted = kept
  else
    if v < m.base then
      table.insert(m.aborted, v)
      save()
      return {'ERR', 'import superseded: a replace import was committed meanwhile'}
    end
    if m.base == 0 then m.base = v end
    if v > m.version then m.version = v end
    m.size = math.max(0, m.size + tonumber(ARGV[5]))
  end
  m.hash = ARGV[6]
  m.imported_at = tonumber(ARGV[7])
  return save()
elseif op == 'abort' then
  local v = tonumber(ARGV[3])
  if drop_pending(v) then table.insert(m.aborted, v) end
  return save()
elseif op == 'ensure' then
  if m.version == 0 then
    m.seq = m.seq + 1
    m.version = m.seq
    if m.base == 0 then m.base = m.seq end
    m.imported_at = tonumber(ARGV[3])
  end
  return save()
elseif op == 'adjust' then
  m.size = math.max(0, m.size + tonumber(ARGV[3]))
  return save()
elseif op == 'expire' then
  local cutoff = tonumber(ARGV[3])
  local kept = {}
  for _, p in ipairs(m.pending) do
    if p[2] < cutoff then table.insert(m.aborted, p[1]) else table.insert(kept, p) end
  end
  m.pending = kept
  return save()
end
return {'ERR', 'unknown op ' .. op}
"""

_LIVE = """
local base, maxv, excluded = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local function live(v)
  return v ~= nil and v > 0 and v >= base and v <= maxv
    and not string.find(excluded, ',' .. v .. ',', 1, true)
end
local prefix = ARGV[1]
local suffix = '|' .. ARGV[2]
local function version_of(f)
  if string.sub(f, 1, #prefix) ~= prefix or string.sub(f, -#suffix) ~= suffix then
    return nil
  end
  return tonumber(string.sub(f, #prefix + 1, #f - #suffix))
end
"""

# Write versioned list entries, one per key (merge import, or a single opposition add).
# KEYS: number HASHes; ARGV: entry prefix ('v|<list>|'), base, version, excluded
# (',3,5,'), new version, only_if_absent (1/0), then (id, value) per key.
# Returns how many entries are new to the live list. On a cluster it is called with one
# key at a time (keys of different numbers live in different slots).
PUT_ENTRIES = """
local prefix, base, maxv, excluded = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
local function live(v)
  return v ~= nil and v > 0 and v >= base and v <= maxv
    and not string.find(excluded, ',' .. v .. ',', 1, true)
end
local added = 0
for i, key in ipairs(KEYS) do
  local suffix = '|' .. ARGV[5 + 2 * i]
  local exists = false
  for _, f in ipairs(redis.call('HKEYS', key)) do
    if string.sub(f, 1, #prefix) == prefix and string.sub(f, -#suffix) == suffix
        and live(tonumber(string.sub(f, #prefix + 1, #f - #suffix))) then
      exists = true
      break
    end
  end
  if not (exists and ARGV[6] == '1') then
    local new = redis.call('HSET', key, prefix .. ARGV[5] .. suffix, ARGV[6 + 2 * i])
    if not exists then added = added + new end
  end
end
return added
"""

# Write entries of a replace import (a new, still pending version): one per key.
# KEYS: number HASHes; ARGV: then (field, value) per key. Returns the new fields count.
HSET_ENTRIES = """
local added = 0
for i, key in ipairs(KEYS) do
  added = added + redis.call('HSET', key, ARGV[2 * i - 1], ARGV[2 * i])
end
return added
"""

# Delete every version of one list entry.
# KEYS[1] number HASH; ARGV: entry prefix, id, base, version, excluded.
# Returns 1 when a live entry was deleted.
REMOVE_ENTRY = _LIVE + """
local was_live = 0
for _, f in ipairs(redis.call('HKEYS', KEYS[1])) do
  local v = version_of(f)
  if v ~= nil then
    if live(v) then was_live = 1 end
    redis.call('HDEL', KEYS[1], f)
  end
end
return was_live
"""

# Append a consent withdrawal instant; keep the newest ARGV[3].
# KEYS[1] number HASH; ARGV: field, ISO instant, kept.
WITHDRAW = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
local items = {}
if cur then
  for x in string.gmatch(cur, '[^,]+') do table.insert(items, x) end
end
table.insert(items, ARGV[2])
while #items > tonumber(ARGV[3]) do table.remove(items, 1) end
redis.call('HSET', KEYS[1], ARGV[1], table.concat(items, ','))
return #items
"""

# Read-only: the batched facts read of a few numbers in one call (redis_reads.py). The
# keys are built here from the parts KeySchema gives (keys.py stays the one schema):
# ARGV[1], ARGV[2]: number hash key head and tail (around the E.164 number);
# ARGV[3], ARGV[4]: attempts key head and middle (then the professional);
# ARGV[5], ARGV[6]: consent bucket key head and tail (around the bucket); ARGV[7]: the
# chunk fields read per number; ARGV[8]: G, the opposition generations read, then per
# generation its bucket key head, set tail and bitmap tail (ARGV[9 .. 8 + 3G]);
# ARGV[9 + 3G]: the numbers, one a line ("\n"): E.164, professional, attempts lower
# bound, bucket, member, separated by tabs.
# Per number, in order: 0 when nothing is stored for it (no hash field, attempt, consent
# chunk or opposition hit: most numbers), else {hash, attempts with scores, consent
# chunks, one hit (0/1) per opposition generation}. Plain Redis and Sentinel only: the
# keys are not declared (a Cluster would need them in one slot).
READ_FACTS = """
local call, find, sub, unpack = redis.call, string.find, string.sub, unpack
local nh, nt, ah, am, kh, kt = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local chunks, g = tonumber(ARGV[7]), tonumber(ARGV[8])
local s = ARGV[9 + 3 * g]
local out, f, fields, k, i, stop = {}, {}, {}, 0, 1, #s + 1
while i < stop do
  local e = find(s, '\\n', i, true) or stop
  local n, j = 0, i
  while true do  -- the line's fields into f[1..n]
    local t = find(s, '\\t', j, true)
    n = n + 1
    if not t or t > e then f[n] = sub(s, j, e - 1); break end
    f[n] = sub(s, j, t - 1)
    j = t + 1
  end
  if n ~= 5 then return redis.error_reply('READ_FACTS: five fields per number') end
  local e164, bucket, member = f[1], f[4], f[5]
  local h = call('HGETALL', nh .. e164 .. nt)
  local a = call('ZRANGEBYSCORE', ah .. e164 .. am .. f[2], f[3], '+inf', 'WITHSCORES')
  fields[1] = member
  for x = 1, chunks - 1 do fields[x + 1] = member .. '.' .. x end
  local c = call('HMGET', kh .. bucket .. kt, unpack(fields, 1, chunks))
  local hits, hit_any = {}, false
  for x = 1, g do
    local head = ARGV[6 + 3 * x] .. bucket
    local hit = call('SISMEMBER', head .. ARGV[7 + 3 * x], member)
    if hit == 0 then hit = call('GETBIT', head .. ARGV[8 + 3 * x], member) end
    hits[x] = hit
    if hit ~= 0 then hit_any = true end
  end
  k = k + 1
  if #h == 0 and #a == 0 and not c[1] and not hit_any then
    out[k] = 0
  else
    out[k] = {h, a, c, hits}
  end
  i = e + 1
end
return out
"""
