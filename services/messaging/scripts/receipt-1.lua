--[[
  Records a recipient's receipt on the sender's message status. Only a recipient of the
  message may mark it — any of them, when the sender used one id for several users (a batch
  send): each is in the hash as `r:<to>` — and a device's status, kept per recipient, only
  moves forward (delivered -> read).

  KEYS[1] message status hash (sender's hash tag): to (the recipient recorded last), offset, ts,
          r:<to> -> offset for every recipient, d:<to>:<deviceId> -> "<status>|<ms>"

  ARGV[1] by (the stamped userId of the receipt's publisher)
  ARGV[2] deviceId
  ARGV[3] status: delivered | read
  ARGV[4] ts, ms

  Returns 1 recorded | 0 unchanged | -1 unknown message | -2 not a recipient

  Hashes written by earlier versions: without `r:` fields (before de-duplication moved into
  the hash) the recipient is `to`; with device statuses as `d:<deviceId>` (before they were
  kept per recipient) those are `to`'s, and the status moves forward from them.
]]
local by, device = ARGV[1], ARGV[2]
local known = redis.call('HMGET', KEYS[1], 'to', 'r:' .. by)
local to = known[1]
if not to then return -1 end
if not known[2] and to ~= by then return -2 end

local rank = { delivered = 1, read = 2 }
local field = 'd:' .. by .. ':' .. device
local cur = redis.call('HGET', KEYS[1], field)
if not cur and to == by then cur = redis.call('HGET', KEYS[1], 'd:' .. device) end
if cur then
  local status = string.match(cur, '^([a-z]+)|')
  if rank[status] and rank[status] >= rank[ARGV[3]] then return 0 end
end
redis.call('HSET', KEYS[1], field, ARGV[3] .. '|' .. ARGV[4])
return 1
