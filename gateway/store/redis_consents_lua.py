"""Lua scripts of the compact consent layout (see redis_consents.py, consent_pack.py).

Each call touches one hash tag on a Cluster (one bucket, or the dictionary). The scripts
only read a record's length, version and id; the rest of it is opaque to them.
"""

from __future__ import annotations

from gateway.store.redis_scripts import LIST_META

_COMMON = """
local function uv(s, pos)
  local n, mult = 0, 1
  while true do
    local b = string.byte(s, pos)
    if b == nil then return nil, pos end
    pos = pos + 1
    n = n + (b % 128) * mult
    if b < 128 then return n, pos end
    mult = mult * 128
  end
end
-- the position after the record whose length prefix is at pos, and where its body
-- starts (nil at the end or on bytes that are not a record)
local function record_end(s, pos)
  local len, body = uv(s, pos)
  if len == nil or body + len - 1 > #s then return nil, nil end
  return body + len, body
end
-- the record at pos: {version, id, raw bytes} and the position after it (nil at the end
-- or on bytes that are not a record)
local function record_at(s, pos)
  local nxt, body = record_end(s, pos)
  if nxt == nil then return nil, nil end
  local ver, p = uv(s, body)
  local idn, q = uv(s, p)
  if idn == 0 then idn = 12 end  -- a derived id: its 12 bytes
  -- the id with its length byte(s): a derived id never equals a written one
  return {ver, string.sub(s, p, q + idn - 1), string.sub(s, pos, nxt - 1)}, nxt
end
local function records(s)
  local out, pos = {}, 1
  while pos <= #s do
    local r, nxt = record_at(s, pos)
    if r == nil then break end
    out[#out + 1] = r
    pos = nxt
  end
  return out
end
local function field(d, i)
  if i == 0 then return d end
  return d .. '.' .. i
end
-- appends number d's bytes data[from..to], as fields of ``chunk`` bytes, to the
-- field/value list ``sets``; returns how many fields
local function add_chunks(sets, d, data, from, to, chunk)
  local n = 0
  for start = from, to, chunk do
    sets[#sets + 1] = field(d, n)
    sets[#sets + 1] = string.sub(data, start, math.min(start + chunk - 1, to))
    n = n + 1
  end
  return n
end
-- one command over a long argument list, 2000 arguments a call (Lua's unpack limit)
local function batched(cmd, key, args)
  for s = 1, #args, 2000 do
    redis.call(cmd, key, unpack(args, s, math.min(s + 1999, #args)))
  end
end
-- fields of a bucket's HGETALL grouped per number: {member = {[chunk] = value}}, and
-- the receipts of PUT ('~<version>:<call>') apart: {field = version}
local function grouped(flat)
  local parts, receipts = {}, {}
  for i = 1, #flat, 2 do
    local f = flat[i]
    if string.byte(f, 1) == 126 then  -- '~'
      receipts[f] = tonumber(string.match(f, '^~(%d+):')) or 0
    else
      local dot = string.find(f, '.', 1, true)
      local d, idx = f, 0
      if dot then d, idx = string.sub(f, 1, dot - 1), tonumber(string.sub(f, dot + 1)) end
      if not parts[d] then parts[d] = {} end
      parts[d][idx] = flat[i + 1]
    end
  end
  return parts, receipts
end
local function write_all(key, d, data, old_n, chunk)
  local sets, dels = {}, {}
  local n = add_chunks(sets, d, data, 1, #data, chunk)
  for i = n, old_n - 1 do dels[#dels + 1] = field(d, i) end
  batched('HSET', key, sets)
  batched('HDEL', key, dels)
end
"""

# Write the records of one import version (merging them into each number's value).
# KEYS: bucket hashes. ARGV[1] chunk size, ARGV[2] 'replace'/'merge', ARGV[3..5] base,
# version, excluded (',3,5,': pending and aborted) of the list when the import began,
# ARGV[6] a receipt ('' for none), then one argument per key: its new records, each
# behind uvarint(member).
# A record with the same version and id as a stored one replaces it (idempotent replay,
# last duplicate of a file wins); any other is appended beside the older versions.
# Each number's chunks are read with HMGET (4 fields a call), each bucket written once
# (one HSET of every changed field).
# Returns how many records are new: replace, new to the version; merge, ids without a
# live record before. A replayed call (a pipeline sent again after its connection was lost
# between the write and the reply) would find its records written already and count
# none: with a receipt (``~<version>:<call>``, unique per call of an import), the count is
# kept in a field of KEYS[1] and a call that finds it returns it and writes nothing
# (the first run did it all: a script runs whole). The importer removes its receipts after
# its commit; COMPACT removes any left over.
PUT = _COMMON + """
local chunk, merge = tonumber(ARGV[1]), ARGV[2] == 'merge'
local base, maxv, excluded = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local receipt = ARGV[6]
if receipt ~= '' then
  local done = redis.call('HGET', KEYS[1], receipt)
  if done then return tonumber(done) end
end
local function live(v)
  return v > 0 and v >= base and v <= maxv
    and not string.find(excluded, ',' .. v .. ',', 1, true)
end
local added = 0
for k, key in ipairs(KEYS) do
  local blob, pos = ARGV[6 + k], 1
  local news, order = {}, {}
  while pos <= #blob do
    local m, at = uv(blob, pos)
    local r, nxt = record_at(blob, at)
    if r == nil then return redis.error_reply('malformed consent records') end
    local d = tostring(m)
    if not news[d] then
      news[d] = {}
      order[#order + 1] = d
    end
    table.insert(news[d], r)
    pos = nxt
  end
  local exists = redis.call('EXISTS', key) == 1
  local sets, dels = {}, {}
  for _, d in ipairs(order) do
    local old_n, chunks = 0, {}
    while exists do  -- the number's chunks, 4 per HMGET
      local got = redis.call('HMGET', key, field(d, old_n), field(d, old_n + 1),
                             field(d, old_n + 2), field(d, old_n + 3))
      local n = 0
      for i = 1, 4 do
        if not got[i] then break end
        chunks[#chunks + 1] = got[i]
        n = i
      end
      old_n = old_n + n
      if n < 4 then break end
    end
    local have = records(table.concat(chunks))
    for _, r in ipairs(news[d]) do
      local same, was_live = nil, false
      for i, h in ipairs(have) do
        if h[2] == r[2] then
          if h[1] == r[1] then same = i elseif live(h[1]) then was_live = true end
        end
      end
      if same then
        have[same] = r
      else
        have[#have + 1] = r
        if not (merge and was_live) then added = added + 1 end
      end
    end
    local raws = {}
    for i, h in ipairs(have) do raws[i] = h[3] end
    local data = table.concat(raws)
    local n = add_chunks(sets, d, data, 1, #data, chunk)
    for i = n, old_n - 1 do dels[#dels + 1] = field(d, i) end
  end
  batched('HSET', key, sets)
  batched('HDEL', key, dels)
end
if receipt ~= '' then redis.call('HSET', KEYS[1], receipt, added) end
return added
"""

# Write the records of a fresh replace import: a new generation (nothing stored in it
# before this import) and numbers the importer counted distinct, so there is nothing to
# read or merge: each number's record is split in chunks and set. KEYS: bucket hashes;
# ARGV[1] chunk size, then one argument per key: its records, each behind
# uvarint(member). A field already there can only be this import's own write sent again
# (a pipeline retried after a lost connection, a NOSCRIPT replay): set again, the same
# value, so a replay is harmless. Returns how many records were written.
PUT_FRESH = _COMMON + """
local chunk = tonumber(ARGV[1])
local written = 0
for k, key in ipairs(KEYS) do
  local blob, pos = ARGV[1 + k], 1
  local sets = {}
  while pos <= #blob do
    local m, at = uv(blob, pos)
    local nxt = record_end(blob, at)
    if nxt == nil then return redis.error_reply('malformed consent records') end
    add_chunks(sets, tostring(m), blob, at, nxt - 1, chunk)
    written = written + 1
    pos = nxt
  end
  batched('HSET', key, sets)
end
return written
"""

# Write the records of a replace import whose numbers are not known distinct yet (the
# file is still being validated): a new generation, written with PUT_FRESH's plain sets
# when none of the call's numbers is stored yet nor twice in it; otherwise nothing is
# written and -1 returned, and the importer sends the call again with PUT (which merges
# exactly as a whole-file PUT would: a fresh write of a number's first record is PUT's).
# Every number is checked before anything is set. KEYS: bucket hashes; ARGV[1] chunk
# size, ARGV[2] a receipt (as PUT's: a call replayed after a lost reply returns its first
# count and writes nothing), then one argument per key: its records, each behind
# uvarint(member). Returns how many records were written, or -1.
PUT_FIRST = _COMMON + """
local chunk, receipt = tonumber(ARGV[1]), ARGV[2]
local done = redis.call('HGET', KEYS[1], receipt)
if done then return tonumber(done) end
local written, plan = 0, {}
for k, key in ipairs(KEYS) do
  local blob, pos = ARGV[2 + k], 1
  local sets, seen, members = {}, {}, {}
  while pos <= #blob do
    local m, at = uv(blob, pos)
    local nxt = record_end(blob, at)
    if nxt == nil then return redis.error_reply('malformed consent records') end
    local d = tostring(m)
    if seen[d] then return -1 end
    seen[d] = true
    members[#members + 1] = d
    add_chunks(sets, d, blob, at, nxt - 1, chunk)
    written = written + 1
    pos = nxt
  end
  if #members > 0 and redis.call('EXISTS', key) == 1 then
    for s = 1, #members, 2000 do
      local got = redis.call('HMGET', key, unpack(members, s, math.min(s + 1999, #members)))
      for i = 1, #got do
        if got[i] then return -1 end
      end
    end
  end
  plan[k] = sets
end
for k, key in ipairs(KEYS) do batched('HSET', key, plan[k]) end
redis.call('HSET', KEYS[1], receipt, written)
return written
"""

# Drop the records no reader can see again: versions below base or aborted, and live
# records superseded by a newer live record of the same id (pending ones are kept).
# Only the numbers that lost records are rewritten; a bucket that outgrew the listpack
# limits during an import (a hashtable now) is rewritten whole (DEL, then HSET), so it is
# compact again. PUT's receipts of imports no longer pending are removed. KEYS[1] bucket;
# ARGV: base, version, excluded, aborted (',3,'), chunk. Returns the number of records
# dropped.
COMPACT = _COMMON + """
local base, maxv, excluded, aborted = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4]
local chunk = tonumber(ARGV[5])
local function live(v)
  return v > 0 and v >= base and v <= maxv
    and not string.find(excluded, ',' .. v .. ',', 1, true)
end
local parts, receipts = grouped(redis.call('HGETALL', KEYS[1]))
-- receipts of imports no longer pending (committed or aborted): nothing replays them
local spent = {}
for f, v in pairs(receipts) do
  if string.find(aborted, ',' .. v .. ',', 1, true)
    or not string.find(excluded, ',' .. v .. ',', 1, true) then spent[#spent + 1] = f end
end
batched('HDEL', KEYS[1], spent)
local dropped, all, changed = 0, {}, {}
for d, p in pairs(parts) do
  local chunks, n = {}, 0
  while p[n] do
    chunks[#chunks + 1] = p[n]
    n = n + 1
  end
  local value = table.concat(chunks)
  local recs = records(value)
  local newest = {}
  for _, r in ipairs(recs) do
    if live(r[1]) and (newest[r[2]] == nil or newest[r[2]] < r[1]) then newest[r[2]] = r[1] end
  end
  local kept, lost = {}, 0
  for _, r in ipairs(recs) do
    local gone = r[1] < base or string.find(aborted, ',' .. r[1] .. ',', 1, true)
      or (live(r[1]) and newest[r[2]] > r[1])
    if gone then lost = lost + 1 else kept[#kept + 1] = r[3] end
  end
  if lost > 0 then
    dropped = dropped + lost
    value = table.concat(kept)
    changed[#changed + 1] = {d, value, n}
  end
  all[#all + 1] = {d, value}
end
if dropped == 0 then return 0 end
if redis.call('OBJECT', 'ENCODING', KEYS[1]) ~= 'listpack' then
  redis.call('DEL', KEYS[1])
  for _, o in ipairs(all) do
    if #o[2] > 0 then write_all(KEYS[1], o[1], o[2], 0, chunk) end
  end
else
  for _, o in ipairs(changed) do write_all(KEYS[1], o[1], o[2], o[3], chunk) end
end
return dropped
"""

# Dictionary ids of terms, handing out new ones. KEYS[1] dictionary HASH; ARGV terms.
INTERN = """
local out = {}
for i, t in ipairs(ARGV) do
  local id = redis.call('HGET', KEYS[1], t)
  if not id then
    id = redis.call('HINCRBY', KEYS[1], '#', 1)
    redis.call('HSET', KEYS[1], t, id)
  end
  out[i] = tonumber(id)
end
return out
"""

# LIST_META (redis_scripts.py), with one more rule for a consent merge: ARGV[8], when not
# empty, is the base the list had when the merge began; a replace committed since then
# moved the readers to another generation, so the merge is refused (import it again).
CONSENT_META = """
if ARGV[1] == 'commit' and ARGV[8] and ARGV[8] ~= '' then
  local current = redis.call('HGET', KEYS[1], ARGV[2])
  if current and tostring(cjson.decode(current).base) ~= ARGV[8] then
    return {'ERR', 'import superseded: a replace import was committed meanwhile'}
  end
end
""" + LIST_META
