--[[
  Records a recipient's receipt on the sender's message status. Only the message's recipient
  may mark it, and a device's status only moves forward (delivered -> read).

  KEYS[1] message status hash (sender's hash tag): to, offset, ts, d:<deviceId> -> "<status>|<ms>"

  ARGV[1] by (the stamped userId of the receipt's publisher)
  ARGV[2] deviceId
  ARGV[3] status: delivered | read
  ARGV[4] ts, ms

  Returns 1 recorded | 0 unchanged | -1 unknown message | -2 not the recipient
]]
local to = redis.call('HGET', KEYS[1], 'to')
if not to then return -1 end
if to ~= ARGV[1] then return -2 end

local rank = { delivered = 1, read = 2 }
local field = 'd:' .. ARGV[2]
local cur = redis.call('HGET', KEYS[1], field)
if cur then
  local status = string.match(cur, '^([a-z]+)|')
  if rank[status] and rank[status] >= rank[ARGV[3]] then return 0 end
end
redis.call('HSET', KEYS[1], field, ARGV[3] .. '|' .. ARGV[4])
return 1
