--[[
  Adds one connection record to a user and reports the user-level edge.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, sts, pend, pr, pt, we
  KEYS[2] user connections hash: token -> "<generation>|<record json>"
  KEYS[3] user tombstones hash: token -> ms (disconnects seen before their connect)
  KEYS[4] the connection's node index: token -> "<userId>|<generation>"
  KEYS[5] stats hash: onlineUsers, connections
  The index and the counts are written here too, so a connect is whole or not at all (no
  second step to announce and repair); they are in other slots: one Redis.

  ARGV[1] fence token "<nodeId>:<epoch>:<connSeq>"
  ARGV[2] connection record (json)
  ARGV[3] node generation the record belongs to
  ARGV[4] now, ms
  ARGV[5] writer epoch (the presence service's); a lower one than the user's is refused
  ARGV[6] "1" = ignore a token that has a tombstone (live events), "0" = snapshots
  ARGV[7] the index entry: "<userId>|<generation>"

  Returns {code, connDelta, online, since, lastSeen, reason, status, meta}
    code  1 online edge | 0 no user-level change | -1 stale writer | -2 tombstoned

  Every call costs: one HMGET, one HSET of the record, at most one HSET and one HDEL of the
  document, the index entry and the counts. Live connects only: a re-sync's records go through snapshot-n.lua, many per call.
]]
local doc, conns, tombs, index, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local token, now, writer = ARGV[1], ARGV[4], ARGV[5]

local d = redis.call('HMGET', doc, 'we', 'online', 'lastSeen')
local we = tonumber(d[1] or '0')
if we > tonumber(writer) then return {-1, 0} end
local newWriter = we < tonumber(writer)

local function claimWriter()
  if newWriter then redis.call('HSET', doc, 'we', writer) end
end

if ARGV[6] == '1' and redis.call('HEXISTS', tombs, token) == 1 then
  claimWriter()
  return {-2, 0}
end

if redis.call('HSET', conns, token, ARGV[3] .. '|' .. ARGV[2]) == 0 then
  claimWriter()
  return {0, 0}
end
redis.call('HSET', index, token, ARGV[7])
redis.call('HINCRBY', stats, 'connections', 1)

if d[2] == '1' then
  if newWriter and tonumber(d[3] or '0') < tonumber(now) then
    redis.call('HSET', doc, 'we', writer, 'lastSeen', now)
  elseif newWriter then
    redis.call('HSET', doc, 'we', writer)
  elseif tonumber(d[3] or '0') < tonumber(now) then
    redis.call('HSET', doc, 'lastSeen', now)
  end
  redis.call('HDEL', doc, 'pend', 'pr', 'pt') -- a held offline edge is cancelled
  return {0, 1}
end

redis.call('HSET', doc, 'online', '1', 'since', now, 'lastSeen', now, 'we', writer)
redis.call('HDEL', doc, 'reason', 'status', 'meta', 'sts', 'pend', 'pr', 'pt')
redis.call('HINCRBY', stats, 'onlineUsers', 1)
return {1, 1, '1', now, now, '', '', ''}
