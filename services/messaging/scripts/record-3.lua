--[[
  Records one message for its recipient, atomically: de-duplicate on (from, id), append to the
  recipient's bounded history stream, remember (from, id) -> offset for the window, and open
  the sender's status of the message. One round trip before the PUBACK instead of two.

  KEYS[1] recipient history stream            (hash tag {to})
  KEYS[2] de-duplication key for (from, id)   (hash tag {to})
  KEYS[3] the message's status hash           (hash tag {from}: another slot, so this script
          needs one Redis, as the presence store's batched scripts do)

  ARGV[1] envelope json (from, to, ts stamped; no offset)
  ARGV[2] history MAXLEN (approximate trim)
  ARGV[3] oldest id kept, "<ms>-0" (approximate MINID trim)
  ARGV[4] de-duplication window, ms (also the status's lifetime)
  ARGV[5] to (recipient)
  ARGV[6] ts, ms

  Returns {duplicate (0|1), offset}
]]
local existing = redis.call('GET', KEYS[2])
if existing then return {1, existing} end

local offset = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'e', ARGV[1])
redis.call('XTRIM', KEYS[1], 'MINID', '~', ARGV[3])
redis.call('SET', KEYS[2], offset, 'PX', ARGV[4])
redis.call('HSET', KEYS[3], 'to', ARGV[5], 'offset', offset, 'ts', ARGV[6])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {0, offset}
