--[[
  Decides users whose offline edge was held (a takeover, a node re-syncing, a dead node): a
  user whose time ran out (or who is released early) and who got no connection meanwhile goes
  offline with the held reason, as of the time the hold kept (`pt`: when the user's last
  connection ended), not the time of the release.

  A variable number of keys (the caller passes numKeys first), two per user, in user order:
    KEYS[2i-1] user document hash: online, since, lastSeen, reason, status, meta, sts, pend, pr, pt, we
    KEYS[2i]   user connections hash
  On a Redis Cluster the caller must batch users by hash slot (keys are tagged {userId}).

  ARGV[1] now, ms
  ARGV[2] writer epoch
  ARGV[3] "1" = release now, before the deadline (the writer knows no connection is coming)

  Returns a flat array, five values per user: code, held, reason, since, lastSeen
    code     2 offline edge (online 0, the held reason; status, meta and their time cleared) | 0 nothing
             to do (no pending, replaced, or not yet due) | -1 stale writer
    held     1 while the user is still pending afterwards (not yet due), else 0
    since    of the offline edge (code 2): `pt`; a hold written before `pt` existed (an
             earlier version of remove-6.lua) has none, and takes now, as that version did
    lastSeen of the offline edge (code 2): the later of the document's and `since`
]]
local now, writer, early = ARGV[1], ARGV[2], ARGV[3]
local w, n = tonumber(writer), tonumber(now)
local out = {}

for i = 1, #KEYS / 2 do
  local doc, conns = KEYS[2 * i - 1], KEYS[2 * i]
  local d = redis.call('HMGET', doc, 'we', 'pend', 'pr', 'pt', 'lastSeen')
  local code, held, reason, since, seen = 0, 0, '', '0', '0'
  if tonumber(d[1] or '0') > w then
    code = -1
    held = d[2] and 1 or 0
  elseif d[2] then
    if redis.call('HLEN', conns) > 0 then
      redis.call('HDEL', doc, 'pend', 'pr', 'pt')
    elseif early ~= '1' and tonumber(d[2]) > n then
      held = 1
    else
      reason = d[3] or 'connection-lost'
      -- kept as the strings they were written as (a number would be formatted by Lua)
      since = d[4] or now
      seen = d[5] or '0'
      if tonumber(seen) < tonumber(since) then seen = since end
      redis.call('HSET', doc, 'online', '0', 'since', since, 'reason', reason, 'lastSeen', seen)
      redis.call('HDEL', doc, 'status', 'meta', 'sts', 'pend', 'pr', 'pt')
      code = 2
    end
  end
  out[#out + 1] = code
  out[#out + 1] = held
  out[#out + 1] = reason
  out[#out + 1] = since
  out[#out + 1] = seen
end
return out
