--[[
  One page of a node's sweep, in Redis: the connections a node's index names that are doomed
  (a dead or retired node's, or those a re-sync did not renew) are removed from their users
  and from the index, and each user-level edge is reported. Per connection what remove-3.lua
  does for a sweep (no tombstones). The whole sweep of a node is this script called page by
  page (the cursor of HSCAN) until the cursor is 0.

  Server-side because the sweep of a dead node of 100k connections is 100k users: reading the
  index out and sending every token back in costs Redis more than the writes themselves. It
  builds the users' key names (RedisKeys in redis-store.ts) from the prefix and the user ids in
  the index, so it needs one Redis, as the other batched scripts do.

  KEYS[1] the node's index hash: token -> "<userId>|<generation>"
  KEYS[2] stats hash: onlineUsers, connections
  KEYS[3] pending zset: userId -> hold deadline
  ARGV[1] key prefix
  ARGV[2] HSCAN cursor
  ARGV[3] HSCAN count
  ARGV[4] which entries are doomed: "gen" (generation ~= ARGV[5]) or "epoch" (token's
          epoch < ARGV[5])
  ARGV[5] the generation or epoch
  ARGV[6] reason (logout, keepalive-timeout, connection-lost, kicked, node-shutdown, node-lost)
  ARGV[7] now, ms
  ARGV[8] writer epoch
  ARGV[9] hold deadline, ms, or "0": when a user's last connection goes, hold the offline edge
          (pending) until then instead of publishing it; the hold keeps ARGV[7] as `pt`, the
          time the edge carries when settled (settle-n.lua)

  Returns a flat array: next cursor, stale (1 when a document of a newer writer was met: the
  page stopped there, every connection before it is fully swept), then three values per user
  edge: userId, code, lastSeen
    code  2 offline edge (online 0, since = now, the reason; status, meta and their time cleared)
          | 4 pending (the edge is held)
]]
local index, stats, pending = KEYS[1], KEYS[2], KEYS[3]
local prefix, mode, bar = ARGV[1], ARGV[4], tonumber(ARGV[5])
local reason, now, writer, hold = ARGV[6], ARGV[7], ARGV[8], ARGV[9]
local w, n = tonumber(writer), tonumber(now)

local byte, sub = string.byte, string.sub

-- the position of the last `c` (a byte) in `s`, or nil: a short walk from the end (patterns
-- would try every start position)
local function last(s, c, from)
  for i = from or #s, 1, -1 do
    if byte(s, i) == c then return i end
  end
end
local BAR, COLON = 124, 58

local page = redis.call('HSCAN', index, ARGV[2], 'COUNT', ARGV[3])
local entries = page[2]
local out = { page[1], 0 }
local conns, online = 0, 0
local gone = {} -- index entries removed, in one call at the end

for i = 1, #entries, 2 do
  local token, value = entries[i], entries[i + 1]
  local at = last(value, BAR)
  local userId = at and sub(value, 1, at - 1)
  local doomed
  if not userId then
    doomed = false
    gone[#gone + 1] = token -- not an entry this store wrote
  elseif mode == 'gen' then
    doomed = tonumber(sub(value, at + 1)) ~= bar
  else
    -- the token is <nodeId>:<epoch>:<connSeq>
    local b = last(token, COLON)
    local a = b and last(token, COLON, b - 1)
    doomed = (a and tonumber(sub(token, a + 1, b - 1)) or 0) < bar
  end
  if doomed then
    local doc = prefix .. 'u:{' .. userId .. '}'
    local cs = doc .. ':c'
    local d = redis.call('HMGET', doc, 'we', 'online', 'lastSeen', 'status', 'meta', 'pend', 'sts')
    local we = tonumber(d[1] or '0')
    if we > w then
      out[2] = 1
      break
    end
    if we < w then redis.call('HSET', doc, 'we', writer) end
    local removed = redis.call('HDEL', cs, token)
    gone[#gone + 1] = token
    if removed > 0 then
      conns = conns - 1
      local seen = d[3] or '0'
      if tonumber(seen) < n then seen = now end
      if d[2] == '1' and redis.call('EXISTS', cs) == 0 then
        if hold ~= '0' then
          redis.call('HSET', doc, 'lastSeen', seen, 'pend', hold, 'pr', reason, 'pt', now)
          redis.call('ZADD', pending, hold, userId)
          out[#out + 1] = userId
          out[#out + 1] = 4
          out[#out + 1] = seen
        else
          redis.call('HSET', doc, 'lastSeen', seen, 'online', '0', 'since', now, 'reason', reason)
          if d[4] or d[5] or d[6] or d[7] then
            redis.call('HDEL', doc, 'status', 'meta', 'sts', 'pend', 'pr', 'pt')
          end
          online = online - 1
          out[#out + 1] = userId
          out[#out + 1] = 2
          out[#out + 1] = seen
        end
      elseif seen == now then
        redis.call('HSET', doc, 'lastSeen', now)
      end
    end
  end
end
if #gone > 0 then redis.call('HDEL', index, unpack(gone)) end
if conns ~= 0 then redis.call('HINCRBY', stats, 'connections', conns) end
if online ~= 0 then redis.call('HINCRBY', stats, 'onlineUsers', online) end
return out
