--[[
  Writes a batch of one node's snapshot records (a re-sync) and reports each user-level edge:
  per record what connect-3.lua does for one, without tombstones (a snapshot is the node's
  truth). One call carries many records because a call costs more than the writes it makes
  (a cold re-sync of 100k connections is 100k records).

  A variable number of keys (the `-n` in the file name: the caller passes numKeys first), two
  per record, in record order:
    KEYS[2i-1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we
    KEYS[2i]   user connections hash: token -> "<generation>|<record json>"
  Every key is named here, so the script is correct on one Redis; on a Redis Cluster the
  caller must batch records by hash slot (they are tagged {userId}).

  ARGV[1] writer epoch (the presence service's); a lower one than the user's is refused
  ARGV[2] now, ms
  ARGV[2i+1], ARGV[2i+2] for record i (from 1): fence token, "<generation>|<record json>"

  Returns a flat array, two numbers per record: code, connDelta
    code  1 online edge (online, since = lastSeen = now, nothing else) | 0 no user-level change
          | -1 stale writer (nothing written for that record)
]]
local writer, now = ARGV[1], ARGV[2]
local w, n = tonumber(writer), tonumber(now)
local out = {}

for i = 1, #KEYS / 2 do
  local doc, conns = KEYS[2 * i - 1], KEYS[2 * i]
  local d = redis.call('HMGET', doc, 'we', 'online', 'lastSeen', 'reason', 'status', 'meta', 'pend', 'pr')
  local we = tonumber(d[1] or '0')
  local code, delta = 0, 0
  if we > w then
    code = -1
  elseif redis.call('HSET', conns, ARGV[2 * i + 1], ARGV[2 * i + 2]) == 0 then
    if we < w then redis.call('HSET', doc, 'we', writer) end
  elseif d[2] == '1' then
    delta = 1
    if tonumber(d[3] or '0') < n then
      redis.call('HSET', doc, 'we', writer, 'lastSeen', now)
    elseif we < w then
      redis.call('HSET', doc, 'we', writer)
    end
    if d[7] or d[8] then redis.call('HDEL', doc, 'pend', 'pr') end -- a held offline edge is cancelled
  else
    code, delta = 1, 1
    redis.call('HSET', doc, 'online', '1', 'since', now, 'lastSeen', now, 'we', writer)
    -- what an offline user's document may hold: deleted only when there (a cold re-sync
    -- creates every document and deletes nothing)
    if d[4] or d[5] or d[6] or d[7] or d[8] then
      redis.call('HDEL', doc, 'reason', 'status', 'meta', 'pend', 'pr')
    end
  end
  out[2 * i - 1] = code
  out[2 * i] = delta
end
return out
