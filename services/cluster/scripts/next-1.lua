--[[
  The next number of a counter that must never repeat, even after Redis lost its data: at
  least one more than the stored value, and at least the caller's floor (its clock, in ms).
  Used for node epochs, presence-service epochs and clientId claims.

  KEYS[1] counter
  ARGV[1] floor (ms since the epoch)
  ARGV[2] time to live of the counter, ms ("0" = keep)

  Returns the new value
]]
local next = math.max(tonumber(redis.call('GET', KEYS[1]) or '0') + 1, tonumber(ARGV[1]))
if ARGV[2] == '0' then
  redis.call('SET', KEYS[1], string.format('%d', next))
else
  redis.call('SET', KEYS[1], string.format('%d', next), 'PX', ARGV[2])
end
return next
