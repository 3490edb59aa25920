--[[
  Removes connection records of one user and reports the user-level edge. Used for a live
  disconnect (one token, tombstone if unknown); a node's sweep uses sweep-node-3.lua.

  KEYS[1] user document hash: online, since, lastSeen, reason, status, meta, sts, pend, pr, pt, we
  KEYS[2] user connections hash: token -> "<generation>|<record json>"
  KEYS[3] user tombstones hash: token -> ms
  KEYS[4] the node index of the tokens: token -> "<userId>|<generation>"
  KEYS[5] stats hash: onlineUsers, connections
  KEYS[6] pending zset: userId -> hold deadline
  The index, the counts and the deadline are written here too, so a disconnect is whole or
  not at all (no second step to announce and repair); they are in other slots: one Redis.

  ARGV[1] reason (logout, keepalive-timeout, connection-lost, kicked, node-shutdown, node-lost, takeover)
  ARGV[2] now, ms
  ARGV[3] writer epoch
  ARGV[4] hold deadline, ms, or "0": when the last connection goes, hold the offline edge
          (pending) until then — always for a takeover, and while the writer cannot see
          every node (a node re-syncing); the hold keeps ARGV[2] as `pt`, the time the
          user's last connection ended, which the edge carries when settled (settle-n.lua)
  ARGV[5] "1" = leave a tombstone for a token that is not there (its connect may still come)
  ARGV[6] tombstone time-to-live, ms
  ARGV[7] most tombstones kept per user
  ARGV[8] the user id (the pending zset's member)
  ARGV[9..] fence tokens, of the one node KEYS[4] indexes

  Returns {code, connDelta, online, since, lastSeen, reason, status, meta}
    code  2 offline edge | 4 pending (the edge is held) | 0 no change | -1 stale writer
]]
local doc, conns, tombs, index, stats = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local reason, now = ARGV[1], ARGV[2]

local we = tonumber(redis.call('HGET', doc, 'we') or '0')
if we > tonumber(ARGV[3]) then return {-1, 0} end
if we < tonumber(ARGV[3]) then redis.call('HSET', doc, 'we', ARGV[3]) end

local removed, tombed = 0, false
for i = 9, #ARGV do
  if redis.call('HDEL', conns, ARGV[i]) == 1 then
    removed = removed + 1
    redis.call('HDEL', index, ARGV[i])
  elseif ARGV[5] == '1' then
    redis.call('HSET', tombs, ARGV[i], now)
    tombed = true
  end
end

if tombed and redis.call('HLEN', tombs) > tonumber(ARGV[7]) then
  local cutoff = tonumber(now) - tonumber(ARGV[6])
  local all = redis.call('HGETALL', tombs)
  local kept = {}
  for i = 1, #all, 2 do
    if tonumber(all[i + 1]) < cutoff then
      redis.call('HDEL', tombs, all[i])
    else
      kept[#kept + 1] = {all[i], tonumber(all[i + 1])}
    end
  end
  if #kept > tonumber(ARGV[7]) then
    table.sort(kept, function(a, b) return a[2] < b[2] end)
    for i = 1, #kept - tonumber(ARGV[7]) do redis.call('HDEL', tombs, kept[i][1]) end
  end
end

if removed == 0 then return {0, 0} end
redis.call('HINCRBY', stats, 'connections', -removed)

if tonumber(redis.call('HGET', doc, 'lastSeen') or '0') < tonumber(now) then
  redis.call('HSET', doc, 'lastSeen', now)
end

if redis.call('HLEN', conns) > 0 or redis.call('HGET', doc, 'online') ~= '1' then
  return {0, -removed}
end

local code = 2
if ARGV[4] ~= '0' then
  local held = reason
  if reason == 'takeover' then held = 'connection-lost' end
  redis.call('HSET', doc, 'pend', ARGV[4], 'pr', held, 'pt', now)
  redis.call('ZADD', KEYS[6], ARGV[4], ARGV[8])
  code = 4
else
  redis.call('HSET', doc, 'online', '0', 'since', now, 'reason', reason)
  redis.call('HDEL', doc, 'status', 'meta', 'sts', 'pend', 'pr', 'pt')
  redis.call('HINCRBY', stats, 'onlineUsers', -1)
end
local d = redis.call('HMGET', doc, 'online', 'since', 'lastSeen', 'reason', 'status', 'meta')
return {code, -removed, d[1] or '0', d[2] or '0', d[3] or '0', d[4] or '', d[5] or '', d[6] or ''}
