"""Lua scripts of the compact opposition lists (see redis_opposition.py).

Each call touches keys of one hash tag on a Cluster (one bucket, or the list metadata).
"""

from __future__ import annotations

# Add the members of many buckets (on a cluster: one bucket per call, single slot).
# KEYS: per bucket 2 * (1 + k) keys: s and b of the new generation, then s and b of each
# of the k older live generations (merge); ARGV[1] threshold, ARGV[2] k, then per bucket
# its members packed as unsigned 16-bit little-endian integers. A bucket holding more
# than threshold members becomes a bitmap (a new bucket of a replace import that arrives
# whole, distinct and over the threshold is written as its bitmap at once: the compact
# importer sends each bucket once). Returns how many members are new to the list.
ADD_BUCKETS = """
local thr, k = tonumber(ARGV[1]), tonumber(ARGV[2])
local per = 2 * (1 + k)
local added = 0
local STEP = 4000  -- members unpacked at once (Lua's C stack holds 8000 values)
local function unpacked(packed, first, count)
  local vals = {struct.unpack('<' .. string.rep('H', count), packed, 2 * first - 1)}
  vals[#vals] = nil  -- struct.unpack also returns the next position
  return vals
end
local function to_bitmap(s, b)
  redis.call('SETBIT', b, 9999, 0)
  for _, x in ipairs(redis.call('SMEMBERS', s)) do redis.call('SETBIT', b, x, 1) end
  redis.call('DEL', s)
end
local function put_bitmap(b, packed, n)
  local bytes = {}
  for i = 1, 1250 do bytes[i] = 0 end
  for c = 1, n, STEP do
    for _, m in ipairs(unpacked(packed, c, math.min(STEP, n - c + 1))) do
      local i = math.floor(m / 8) + 1
      bytes[i] = bit.bor(bytes[i], bit.rshift(128, m % 8))
    end
  end
  local parts = {}
  for c = 1, 1250, 250 do parts[#parts + 1] = string.char(unpack(bytes, c, c + 249)) end
  redis.call('SET', b, table.concat(parts))
end
for j = 3, #ARGV do
  local base = (j - 3) * per
  local s, b, packed = KEYS[base + 1], KEYS[base + 2], ARGV[j]
  local n = math.floor(#packed / 2)
  local bitmap = redis.call('EXISTS', b) == 1
  if k == 0 and not bitmap and n > thr and redis.call('EXISTS', s) == 0 then
    put_bitmap(b, packed, n)  -- a whole new dense bucket (distinct members): straight
    added = added + n
  elseif k == 0 and not bitmap then
    for c = 1, n, STEP do
      added = added + redis.call('SADD', s, unpack(unpacked(packed, c, math.min(STEP, n - c + 1))))
    end
    if redis.call('SCARD', s) > thr then to_bitmap(s, b) end
  else
    local ms = {}
    for c = 1, n, STEP do
      for _, m in ipairs(unpacked(packed, c, math.min(STEP, n - c + 1))) do ms[#ms + 1] = m end
    end
    for _, m in ipairs(ms) do
      local new
      if bitmap then
        new = 1 - redis.call('SETBIT', b, m, 1)
      else
        new = redis.call('SADD', s, m)
      end
      if new == 1 then
        local older = false
        for o = base + 3, base + per, 2 do
          if redis.call('SISMEMBER', KEYS[o], m) == 1
              or redis.call('GETBIT', KEYS[o + 1], m) == 1 then
            older = true
            break
          end
        end
        if not older then added = added + 1 end
        if not bitmap and redis.call('SCARD', s) > thr then
          to_bitmap(s, b)
          bitmap = true
        end
      end
    end
  end
end
return added
"""

# KEYS: (s, b) per live generation; ARGV: member. Removes it; returns 1 if it was there.
REMOVE_MEMBER = """
local was = 0
for k = 1, #KEYS, 2 do
  if redis.call('SREM', KEYS[k], ARGV[1]) == 1 then was = 1 end
  if redis.call('GETBIT', KEYS[k + 1], ARGV[1]) == 1 then
    redis.call('SETBIT', KEYS[k + 1], ARGV[1], 0)
    was = 1
  end
end
return was
"""

# KEYS[1] lists HASH; ARGV: op, list name, then
#   swap version mode size hash now_ms max_gens  -> make a built generation live
#   forget gen                                    -> a retired generation was deleted
#   individual delta                              -> count of one-by-one additions
OPP_META = """
local raw = redis.call('HGET', KEYS[1], ARGV[2])
if not raw then return {'ERR', 'unknown list ' .. ARGV[2]} end
local m = cjson.decode(raw)
local function arr(x) if type(x) ~= 'table' then return {} end return x end
m.pending, m.aborted = arr(m.pending), arr(m.aborted)
m.gens, m.retired = arr(m.gens), arr(m.retired)
m.individual = m.individual or 0
local function save()
  local out = cjson.encode(m)
  redis.call('HSET', KEYS[1], ARGV[2], out)
  return {'OK', out}
end
local op = ARGV[1]
if op == 'swap' then
  local v, now = tonumber(ARGV[3]), tonumber(ARGV[7])
  local found, kept = false, {}
  for _, p in ipairs(m.pending) do
    if p[1] == v then found = true else table.insert(kept, p) end
  end
  if not found then
    return {'ERR', 'import version ' .. v .. ' is no longer pending (expired or aborted)'}
  end
  m.pending = kept
  if ARGV[4] == 'replace' then
    if v < m.version then
      table.insert(m.aborted, v)
      save()
      return {'ERR', 'import superseded: version ' .. m.version .. ' was committed meanwhile'}
    end
    for _, g in ipairs(m.gens) do table.insert(m.retired, {g, now}) end
    local still = {}
    for _, a in ipairs(m.aborted) do
      if a >= v then table.insert(still, a) else table.insert(m.retired, {a, 0}) end
    end
    m.aborted = still
    m.gens = {v}
    m.base, m.version, m.size = v, v, tonumber(ARGV[5])
  else
    if v < m.base then
      table.insert(m.aborted, v)
      save()
      return {'ERR', 'import superseded: a replace import was committed meanwhile'}
    end
    if #m.gens >= tonumber(ARGV[8]) then
      table.insert(m.aborted, v)
      save()
      return {'ERR', 'too many merge imports since the last replace (' .. #m.gens ..
        '): import the whole list with --mode replace'}
    end
    table.insert(m.gens, v)
    if m.base == 0 then m.base = v end
    if v > m.version then m.version = v end
    m.size = m.size + tonumber(ARGV[5])
  end
  m.hash = ARGV[6]
  m.imported_at = now
  return save()
elseif op == 'forget' then
  local g, kept = tonumber(ARGV[3]), {}
  for _, r in ipairs(m.retired) do
    if r[1] ~= g then table.insert(kept, r) end
  end
  m.retired = kept
  return save()
elseif op == 'individual' then
  m.individual = math.max(0, m.individual + tonumber(ARGV[3]))
  return save()
elseif op == 'size' then
  m.size = math.max(0, m.size + tonumber(ARGV[3]))
  return save()
end
return {'ERR', 'unknown op ' .. op}
"""
