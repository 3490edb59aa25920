--[[
  Sets an online user's status and meta (users/<userId>/status); last write wins.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we

  ARGV[1] status ("" clears it)
  ARGV[2] meta json ("" clears it)
  ARGV[3] writer epoch

  Returns {code, 0, online, since, lastSeen, reason, status, meta}
    code  3 status changed | 0 no change (same value, or the user is offline) | -1 stale writer
]]
local doc = KEYS[1]
local we = tonumber(redis.call('HGET', doc, 'we') or '0')
if we > tonumber(ARGV[3]) then return {-1, 0} end
if redis.call('HGET', doc, 'online') ~= '1' then return {0, 0} end
if we < tonumber(ARGV[3]) then redis.call('HSET', doc, 'we', ARGV[3]) end

local cur = redis.call('HMGET', doc, 'status', 'meta')
if (cur[1] or '') == ARGV[1] and (cur[2] or '') == ARGV[2] then return {0, 0} end

for i, field in ipairs({'status', 'meta'}) do
  if ARGV[i] == '' then redis.call('HDEL', doc, field) else redis.call('HSET', doc, field, ARGV[i]) end
end
local d = redis.call('HMGET', doc, 'online', 'since', 'lastSeen', 'reason', 'status', 'meta')
return {3, 0, d[1] or '0', d[2] or '0', d[3] or '0', d[4] or '', d[5] or '', d[6] or ''}
