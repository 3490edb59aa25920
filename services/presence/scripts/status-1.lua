--[[
  Sets an online user's status and meta (users/<userId>/status); last write wins, by the time
  the node received the change: a user's changes made on several nodes reach the writer in
  the order it reads the nodes' logs, not the order they were made (a restarted service
  replaying each log, changes read while a node's re-sync was awaited). The document keeps
  the time of the status it holds (`sts`); an older change is refused, an equal one applies
  (the later read wins ties: one node's changes carry its times in log order). Every script
  that clears status and meta clears `sts` with them, so a new session's first change always
  applies. A document of an earlier version has no `sts`: any change applies, as it did.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, sts, pend, pr, pt, we

  ARGV[1] status ("" clears it)
  ARGV[2] meta json ("" clears it)
  ARGV[3] writer epoch
  ARGV[4] when the node received the change, ms (its clock)

  Returns {code, 0, online, since, lastSeen, reason, status, meta}
    code  3 status changed | 0 no change (same value, older than the status held, or the user
          is offline) | -1 stale writer
]]
local doc, ts = KEYS[1], ARGV[4]
local we = tonumber(redis.call('HGET', doc, 'we') or '0')
if we > tonumber(ARGV[3]) then return {-1, 0} end
if redis.call('HGET', doc, 'online') ~= '1' then return {0, 0} end
if we < tonumber(ARGV[3]) then redis.call('HSET', doc, 'we', ARGV[3]) end

local cur = redis.call('HMGET', doc, 'status', 'meta', 'sts')
if cur[3] and tonumber(ts) < tonumber(cur[3]) then return {0, 0} end
-- the time moves on even when the value does not: a change between the two, read later, is older
redis.call('HSET', doc, 'sts', ts)
if (cur[1] or '') == ARGV[1] and (cur[2] or '') == ARGV[2] then return {0, 0} end

for i, field in ipairs({'status', 'meta'}) do
  if ARGV[i] == '' then redis.call('HDEL', doc, field) else redis.call('HSET', doc, field, ARGV[i]) end
end
local d = redis.call('HMGET', doc, 'online', 'since', 'lastSeen', 'reason', 'status', 'meta')
return {3, 0, d[1] or '0', d[2] or '0', d[3] or '0', d[4] or '', d[5] or '', d[6] or ''}
