--[[
  Renews a lease only for its holder (compare-and-expire).

  KEYS[1] lease key
  ARGV[1] holder (instance id)
  ARGV[2] time to live, ms

  Returns 1 renewed | 0 the lease is held by someone else | -1 the lease had lapsed and was re-taken
]]
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return -1
end
return 0
