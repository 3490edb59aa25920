--[[
  Takes a lease from a named previous holder (a crashed earlier incarnation of the caller).

  KEYS[1] lease key
  ARGV[1] the holder expected to hold it now
  ARGV[2] the new holder
  ARGV[3] time to live, ms

  Returns 1 taken | 0 it is held by someone else (or nobody: use acquire)
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
