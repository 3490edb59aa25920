--[[
  Writes fields of one node's record (epoch, minEpoch, gen, liveGen, heartbeat, retired), fenced
  like every user document: a presence service that a newer one has replaced must not move a
  node's generations or epochs back (a stale `liveGen` would make swept records count again).

  KEYS[1] node hash (hash tag {nodeId})
  KEYS[2] the set of known node ids

  ARGV[1] writer epoch (the presence service's); refused when the node was written by a newer one
  ARGV[2] node id (added to the set)
  ARGV[3], ARGV[4], ... field, value pairs

  Returns 1, or -1 for a stale writer (nothing written)
]]
local w = tonumber(ARGV[1])
if tonumber(redis.call('HGET', KEYS[1], 'we') or '0') > w then return -1 end
local fields = { 'we', ARGV[1] }
for i = 3, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], ARGV[2])
return 1
