--[[
  Removes connection records of many users at once — a sweep: a dead or retired node, or the
  records a re-sync did not renew — and reports each user-level edge. Per user what
  remove-3.lua does for a sweep (no tombstones). One call carries many users because a call
  costs more than the writes it makes (a dead node of 100k connections is 100k users).

  A variable number of keys (the caller passes numKeys first), two per user, in user order:
    KEYS[2i-1] user document hash: online, since, lastSeen, reason, status, meta, pend, pr, we
    KEYS[2i]   user connections hash: token -> "<generation>|<record json>"
  Every key is named here, so the script is correct on one Redis; on a Redis Cluster the
  caller must batch users by hash slot (keys are tagged {userId}).

  ARGV[1] reason (logout, keepalive-timeout, connection-lost, kicked, node-shutdown, node-lost)
  ARGV[2] now, ms
  ARGV[3] writer epoch
  ARGV[4] hold deadline, ms, or "0": when a user's last connection goes, hold the offline edge
          (pending) until then instead of publishing it
  then per user: the number of its tokens k, and its k fence tokens

  Returns a flat array, three values per user: code, connDelta, lastSeen
    code  2 offline edge (online 0, since = now, the reason; status and meta cleared)
          | 4 pending (the edge is held) | 0 no user-level change | -1 stale writer
]]
local reason, now, writer, hold = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local w, n = tonumber(writer), tonumber(now)
local out = {}
local a = 5

for i = 1, #KEYS / 2 do
  local doc, conns = KEYS[2 * i - 1], KEYS[2 * i]
  local k = tonumber(ARGV[a])
  local tokens = {}
  for j = 1, k do tokens[j] = ARGV[a + j] end
  a = a + k + 1

  local d = redis.call('HMGET', doc, 'we', 'online', 'lastSeen')
  local we = tonumber(d[1] or '0')
  local code, delta, seen = 0, 0, d[3] or '0'
  if we > w then
    code = -1
  else
    if we < w then redis.call('HSET', doc, 'we', writer) end
    local removed = redis.call('HDEL', conns, unpack(tokens))
    delta = -removed
    if removed > 0 then
      if tonumber(seen) < n then
        seen = now
        redis.call('HSET', doc, 'lastSeen', now)
      end
      if d[2] == '1' and redis.call('HLEN', conns) == 0 then
        if hold ~= '0' then
          redis.call('HSET', doc, 'pend', hold, 'pr', reason)
          code = 4
        else
          redis.call('HSET', doc, 'online', '0', 'since', now, 'reason', reason)
          redis.call('HDEL', doc, 'status', 'meta', 'pend', 'pr')
          code = 2
        end
      end
    end
  end
  out[#out + 1] = code
  out[#out + 1] = delta
  out[#out + 1] = seen
end
return out
