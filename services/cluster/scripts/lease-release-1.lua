--[[
  Releases a lease only for its holder.

  KEYS[1] lease key
  ARGV[1] holder (instance id)

  Returns 1 released | 0 not the holder
]]
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
