--[[
  Takes (reads and removes) the wills of some connections of one node: whoever takes a will
  publishes it, so each will is published at most once.

  KEYS[1] the node's wills hash: fence token -> will json

  ARGV[1..] fence tokens

  Returns the will json of every token that had one (flat list: token, json, token, json, ...)
]]
local out = {}
for i = 1, #ARGV do
  local will = redis.call('HGET', KEYS[1], ARGV[i])
  if will then
    redis.call('HDEL', KEYS[1], ARGV[i])
    out[#out + 1] = ARGV[i]
    out[#out + 1] = will
  end
end
return out
