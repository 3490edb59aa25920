--[[
  Decides a user whose offline edge was held (a takeover, or a node re-syncing): if the time
  ran out and no connection came, the user goes offline with the held reason.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we
  KEYS[2] user connections hash

  ARGV[1] now, ms
  ARGV[2] writer epoch
  ARGV[3] "1" = release now, before the deadline (the writer knows no connection is coming)

  Returns {code, 0, online, since, lastSeen, reason, status, meta}
    code  2 offline edge | 0 nothing to do (no pending, replaced, or not yet due) | -1 stale writer
]]
local doc, conns, now = KEYS[1], KEYS[2], ARGV[1]
local we = tonumber(redis.call('HGET', doc, 'we') or '0')
if we > tonumber(ARGV[2]) then return {-1, 0} end

local pend = redis.call('HGET', doc, 'pend')
if not pend then return {0, 0} end
if redis.call('HLEN', conns) > 0 then
  redis.call('HDEL', doc, 'pend', 'pr')
  return {0, 0}
end
if ARGV[3] ~= '1' and tonumber(pend) > tonumber(now) then return {0, 0} end

local reason = redis.call('HGET', doc, 'pr') or 'connection-lost'
redis.call('HSET', doc, 'online', '0', 'since', now, 'reason', reason, 'lastSeen', now)
redis.call('HDEL', doc, 'status', 'meta', 'pend', 'pr')
local d = redis.call('HMGET', doc, 'online', 'since', 'lastSeen', 'reason', 'status', 'meta')
return {2, 0, d[1] or '0', d[2] or '0', d[3] or '0', d[4] or '', d[5] or '', d[6] or ''}
