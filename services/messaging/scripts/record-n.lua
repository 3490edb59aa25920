--[[
  Records a batch of messages (those that arrived in one event-loop turn, in arrival order),
  each atomically on its own: de-duplicate on (from, id), append to the recipient's bounded
  history stream, remember (from, id) -> offset for the window, and open the sender's status
  of the message. One script per batch instead of one per message: a script call costs more
  than the writes it makes (~8 us in Redis, ~15 us in ioredis on the bench machine).

  KEYS, three per message, in the order of ARGV's messages:
    recipient history stream            (hash tag {to})
    the de-duplication key earlier versions wrote for (to, from, id) (hash tag {to}): read, so
      a retry of a message they recorded is still found; never written
    the message's status hash           (hash tag {from})

  De-duplication lives in the status hash, as its field `r:<to>` -> offset: a key of its own
  with its own expiry per message cost ~2 us of Redis CPU of the script's ~7.5 and ~130 bytes
  of memory per message kept for the window (measured with a Lua loop of 100k records).
  Messages of several users (other slots): this script needs one Redis, as the presence
  store's batched scripts do.

  ARGV[1] history MAXLEN (approximate trim)
  ARGV[2] oldest id kept, "<ms>-0" (approximate MINID trim)
  ARGV[3] de-duplication window, ms: the status's lifetime, renewed when the same id is
          recorded for another recipient
  then per message: envelope json (from, to, ts stamped; no offset), to (recipient), ts (ms)

  Returns one {code, value} per message: {0, offset} recorded, {1, offset} a duplicate of the
  recording at offset, {-1, error} not recorded (that message only: the others stand).
]]
local maxLen, minId, window = ARGV[1], ARGV[2], ARGV[3]

local function record(history, legacyDedup, status, envelope, to, ts)
  local seen = 'r:' .. to
  local existing = redis.call('HGET', status, seen) or redis.call('GET', legacyDedup)
  if existing then return {1, existing} end
  local offset = redis.call('XADD', history, 'MAXLEN', '~', maxLen, '*', 'e', envelope)
  redis.call('XTRIM', history, 'MINID', '~', minId)
  -- `to` and `offset` are the latest recipient's (receipts check `to`); `r:<to>` stays for
  -- every recipient the sender used this id for, so each one's retry is still a repeat
  redis.call('HSET', status, 'to', to, 'offset', offset, 'ts', ts, seen, offset)
  redis.call('PEXPIRE', status, window)
  return {0, offset}
end

local out = {}
for i = 1, #KEYS / 3 do
  local k, a = 3 * i - 2, 3 * i + 1
  local ok, reply = pcall(record, KEYS[k], KEYS[k + 1], KEYS[k + 2], ARGV[a], ARGV[a + 1], ARGV[a + 2])
  if ok then
    out[i] = reply
  else
    out[i] = {-1, type(reply) == 'table' and tostring(reply.err) or tostring(reply)}
  end
end
return out
