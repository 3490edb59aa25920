--[[
  Events against sliding-window limits shared by every node (a connect counts against its
  device's limit and its user's), in order, in one call: the first limit that refuses stops
  the rest, which are not counted (as if checked one after the other). Past a limit the key is
  refused for a cool-down; attempts during the cool-down are refused without being counted,
  and the window starts empty when it ends (as EMQX's flapping ban), so a client retrying
  every second is let back in.

  Two keys per limit, in order (the caller passes numKeys first):
    KEYS[2i-1] the window's log (sorted set of event times)
    KEYS[2i]   the cool-down marker
  Keys of different limits may be in different slots: one Redis, as the presence store's
  batched scripts.
  Four arguments per limit, in the same order:
    limit (events allowed per window), window ms, cool-down ms ("0" = none: refused until the
    oldest event leaves the window), a unique member for this event

  Returns {0, 0} when every limit allows the event, else {i, ms}: the limit that refused it
  (1-based) and how long to wait
]]
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- 0 when allowed (and counted), else how long to wait
local function hit(log, ban, limit, window, cooldown, member)
  local banned = redis.call('PTTL', ban)
  if banned > 0 then return banned end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', string.format('%d', now - window))
  if redis.call('ZCARD', log) >= limit then
    if cooldown > 0 then
      -- the key starts afresh when its cool-down ends
      redis.call('DEL', log)
      redis.call('SET', ban, '1', 'PX', cooldown)
      return cooldown
    end
    local oldest = redis.call('ZRANGE', log, 0, 0, 'WITHSCORES')
    return math.max(1, tonumber(oldest[2]) + window - now)
  end
  redis.call('ZADD', log, string.format('%d', now), member)
  redis.call('PEXPIRE', log, window)
  return 0
end

for i = 1, #KEYS / 2 do
  local a = 4 * (i - 1)
  local wait = hit(KEYS[2 * i - 1], KEYS[2 * i], tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]),
    tonumber(ARGV[a + 3]), ARGV[a + 4])
  if wait > 0 then return { i, wait } end
end
return { 0, 0 }
