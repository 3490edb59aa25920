--[[
  One event against a sliding-window limit shared by every node (connects per device, per
  user).  Past the limit the key is refused for a cool-down; attempts during the cool-down are
  refused without being counted, and the window starts empty when it ends (as EMQX's flapping
  ban), so a client retrying every second is let back in.

  KEYS[1] the window's log (sorted set of event times)
  KEYS[2] the cool-down marker
  ARGV[1] limit (events allowed per window)
  ARGV[2] window, ms
  ARGV[3] cool-down, ms ("0" = none: refused until the oldest event leaves the window)
  ARGV[4] a unique member for this event

  Returns 0 when allowed, else how long to wait, ms
]]
local banned = redis.call('PTTL', KEYS[2])
if banned > 0 then return banned end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then
  local cooldown = tonumber(ARGV[3])
  if cooldown > 0 then
    -- the device starts afresh when its cool-down ends
    redis.call('DEL', KEYS[1])
    redis.call('SET', KEYS[2], '1', 'PX', cooldown)
    return cooldown
  end
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return math.max(1, tonumber(oldest[2]) + window - now)
end
redis.call('ZADD', KEYS[1], string.format('%d', now), ARGV[4])
redis.call('PEXPIRE', KEYS[1], window)
return 0
