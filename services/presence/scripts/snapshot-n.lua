--[[
  Writes a batch of one node's snapshot records (a re-sync) and reports each user-level edge:
  per record what connect-5.lua does for one, without tombstones (a snapshot is the node's
  truth). One call carries many records because a call costs more than the writes it makes
  (a cold re-sync of 100k connections is 100k records). The node's index entry and the counts
  are written here too, so a batch is one atomic step: nothing is ever half written (before,
  the index followed in a second round trip, announced in `intents` for a killed writer's
  successor to repair).

  A variable number of keys (the `-n` in the file name: the caller passes numKeys first):
    KEYS[1]    the node's index hash: token -> "<userId>|<generation>"
    KEYS[2]    the counts hash: onlineUsers, connections
  then two per record, in record order:
    KEYS[2i+1] user document hash: online, since, lastSeen, reason, status, meta, sts, pend, pr, pt, we
    KEYS[2i+2] user connections hash: token -> "<generation>|<record json>"
  Every key is named here; the index and the counts are in other slots than the records
  (tagged {userId}): one Redis, as connect-5.lua.

  ARGV[1] writer epoch (the presence service's); a lower one than the user's is refused
  ARGV[2] now, ms
  ARGV[3] the snapshot's generation
  ARGV[3i+1], ARGV[3i+2], ARGV[3i+3] for record i (from 1): fence token,
          "<generation>|<record json>", user id

  Returns a flat array, one code per record:
    1 online edge (online, since = lastSeen = now, nothing else) | 0 no user-level change
    | -1 stale writer (nothing written for that record, not indexed)
]]
local writer, now, gen = ARGV[1], ARGV[2], ARGV[3]
local w, n = tonumber(writer), tonumber(now)
local index, stats = KEYS[1], KEYS[2]
local out = {}
local online, connections = 0, 0
local entries = {}

for i = 1, (#KEYS - 2) / 2 do
  local doc, conns = KEYS[2 * i + 1], KEYS[2 * i + 2]
  local token = ARGV[3 * i + 1]
  local d = redis.call('HMGET', doc, 'we', 'online', 'lastSeen', 'reason', 'status', 'meta', 'pend', 'pr', 'sts')
  local we = tonumber(d[1] or '0')
  local code = 0
  if we > w then
    code = -1
  elseif redis.call('HSET', conns, token, ARGV[3 * i + 2]) == 0 then
    if we < w then redis.call('HSET', doc, 'we', writer) end
  elseif d[2] == '1' then
    connections = connections + 1
    if tonumber(d[3] or '0') < n then
      redis.call('HSET', doc, 'we', writer, 'lastSeen', now)
    elseif we < w then
      redis.call('HSET', doc, 'we', writer)
    end
    if d[7] or d[8] then redis.call('HDEL', doc, 'pend', 'pr', 'pt') end -- a held offline edge is cancelled
  else
    code = 1
    online = online + 1
    connections = connections + 1
    redis.call('HSET', doc, 'online', '1', 'since', now, 'lastSeen', now, 'we', writer)
    -- what an offline user's document may hold: deleted only when there (a cold re-sync
    -- creates every document and deletes nothing)
    if d[4] or d[5] or d[6] or d[7] or d[8] or d[9] then
      redis.call('HDEL', doc, 'reason', 'status', 'meta', 'sts', 'pend', 'pr', 'pt')
    end
  end
  if code ~= -1 then
    entries[#entries + 1] = token
    entries[#entries + 1] = ARGV[3 * i + 3] .. '|' .. gen
  end
  out[i] = code
end
-- the index in one call (a call costs more than a field; a batch is 500 records, within unpack's limit)
if #entries > 0 then redis.call('HSET', index, unpack(entries)) end
if online ~= 0 then redis.call('HINCRBY', stats, 'onlineUsers', online) end
if connections ~= 0 then redis.call('HINCRBY', stats, 'connections', connections) end
return out
