--[[
  Decides users whose offline edge was held (a takeover, a node re-syncing, a dead node): a
  user whose time ran out (or who is released early) and who got no connection meanwhile goes
  offline with the held reason. One call decides many users (a dead node releases 100k).

  A variable number of keys (the caller passes numKeys first), two per user, in user order:
    KEYS[2i-1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we
    KEYS[2i]   user connections hash
  On a Redis Cluster the caller must batch users by hash slot (keys are tagged {userId}).

  ARGV[1] now, ms
  ARGV[2] writer epoch
  ARGV[3] "1" = release now, before the deadline (the writer knows no connection is coming)

  Returns a flat array, three values per user: code, held, reason
    code  2 offline edge (online 0, since = lastSeen = now, the held reason; status and meta
          cleared) | 0 nothing to do (no pending, replaced, or not yet due) | -1 stale writer
    held  1 while the user is still pending afterwards (not yet due), else 0
]]
local now, writer, early = ARGV[1], ARGV[2], ARGV[3]
local w, n = tonumber(writer), tonumber(now)
local out = {}

for i = 1, #KEYS / 2 do
  local doc, conns = KEYS[2 * i - 1], KEYS[2 * i]
  local d = redis.call('HMGET', doc, 'we', 'pend', 'pr')
  local code, held, reason = 0, 0, ''
  if tonumber(d[1] or '0') > w then
    code = -1
    held = d[2] and 1 or 0
  elseif d[2] then
    if redis.call('HLEN', conns) > 0 then
      redis.call('HDEL', doc, 'pend', 'pr')
    elseif early ~= '1' and tonumber(d[2]) > n then
      held = 1
    else
      reason = d[3] or 'connection-lost'
      redis.call('HSET', doc, 'online', '0', 'since', now, 'reason', reason, 'lastSeen', now)
      redis.call('HDEL', doc, 'status', 'meta', 'pend', 'pr')
      code = 2
    end
  end
  out[#out + 1] = code
  out[#out + 1] = held
  out[#out + 1] = reason
end
return out
