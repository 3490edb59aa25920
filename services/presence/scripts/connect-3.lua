--[[
  Adds one connection record to a user and reports the user-level edge.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we
  KEYS[2] user connections hash: token -> "<generation>|<record json>"
  KEYS[3] user tombstones hash: token -> ms (disconnects seen before their connect)

  ARGV[1] fence token "<nodeId>:<epoch>:<connSeq>"
  ARGV[2] connection record (json)
  ARGV[3] node generation the record belongs to
  ARGV[4] now, ms
  ARGV[5] writer epoch (the presence service's); a lower one than the user's is refused
  ARGV[6] "1" = ignore a token that has a tombstone (live events), "0" = snapshots

  Returns {code, connDelta, online, since, lastSeen, reason, status, meta}
    code  1 online edge | 0 no user-level change | -1 stale writer | -2 tombstoned
]]
local doc, conns, tombs = KEYS[1], KEYS[2], KEYS[3]
local token, now = ARGV[1], ARGV[4]

local we = tonumber(redis.call('HGET', doc, 'we') or '0')
if we > tonumber(ARGV[5]) then return {-1, 0} end
if we < tonumber(ARGV[5]) then redis.call('HSET', doc, 'we', ARGV[5]) end

if ARGV[6] == '1' and redis.call('HEXISTS', tombs, token) == 1 then return {-2, 0} end

local added = redis.call('HSET', conns, token, ARGV[3] .. '|' .. ARGV[2])
if added == 0 then return {0, 0} end

if tonumber(redis.call('HGET', doc, 'lastSeen') or '0') < tonumber(now) then
  redis.call('HSET', doc, 'lastSeen', now)
end

if redis.call('HGET', doc, 'online') == '1' then
  redis.call('HDEL', doc, 'pend', 'pr') -- a held offline edge is cancelled
  return {0, 1}
end

redis.call('HSET', doc, 'online', '1', 'since', now, 'lastSeen', now)
redis.call('HDEL', doc, 'reason', 'status', 'meta', 'pend', 'pr')
local d = redis.call('HMGET', doc, 'online', 'since', 'lastSeen', 'reason', 'status', 'meta')
return {1, 1, d[1] or '0', d[2] or '0', d[3] or '0', d[4] or '', d[5] or '', d[6] or ''}
