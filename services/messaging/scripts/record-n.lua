--[[
  Records a batch of messages (those that arrived in one event-loop turn, in arrival order),
  each atomically on its own: de-duplicate on (from, id), append to the recipient's bounded
  history stream, remember (from, id) -> offset for the window, and open the sender's status
  of the message. One script per batch instead of one per message: a script call costs more
  than the writes it makes (~8 us in Redis, ~15 us in ioredis on the bench machine).

  KEYS, two per message, in the order of ARGV's messages:
    recipient history stream            (hash tag {to})
    the message's status hash           (hash tag {from})

  De-duplication lives in the status hash, as its field `r:<to>` -> offset: a key of its own
  with its own expiry per message cost ~2 us of Redis CPU of the script's ~7.5 and ~130 bytes
  of memory per message kept for the window (measured with a Lua loop of 100k records).
  Versions before that kept a key of their own per recipient and wrote the status hash
  without `r:` fields; such a status whose `to` is this recipient is a repeat too (one HMGET
  reads both), so a retry across an upgrade is still found. (A retry to an earlier one of
  several recipients of the same id is not: only the latest is in `to`.)
  Messages of several users (other slots): this script needs one Redis, as the presence
  store's batched scripts do.

  ARGV[1] history MAXLEN (approximate trim, on every append)
  ARGV[2] oldest id kept, "<ms>-0" (approximate MINID trim, where a message asks for it:
          the age trim only frees memory — reads skip older entries themselves — so the
          caller asks for it about once a minute per history, not on every append)
  ARGV[3] de-duplication window, ms: the status's lifetime, renewed when the same id is
          recorded for another recipient
  then per message: envelope json (from, to, ts stamped; no offset), to (recipient), ts (ms),
  trim by age ("1") or not ("0")

  Returns one {code, value} per message: {0, offset} recorded, {1, offset} a duplicate of the
  recording at offset, {-1, error} not recorded (that message only: the others stand).
]]
local maxLen, minId, window = ARGV[1], ARGV[2], ARGV[3]

local function record(history, status, envelope, to, ts, trim)
  local seen = 'r:' .. to
  local known = redis.call('HMGET', status, seen, 'to', 'offset')
  if known[1] then return {1, known[1]} end
  if known[2] == to and known[3] then return {1, known[3]} end
  local offset = redis.call('XADD', history, 'MAXLEN', '~', maxLen, '*', 'e', envelope)
  if trim == '1' then redis.call('XTRIM', history, 'MINID', '~', minId) end
  -- `to` and `offset` are the latest recipient's (what the status reports at its top level);
  -- `r:<to>` stays for every recipient the sender used this id for, so each one's retry is
  -- still a repeat, each one may send receipts (receipt-1.lua) and each one's offset is known
  redis.call('HSET', status, 'to', to, 'offset', offset, 'ts', ts, seen, offset)
  redis.call('PEXPIRE', status, window)
  return {0, offset}
end

local out = {}
for i = 1, #KEYS / 2 do
  local k, a = 2 * i - 1, 4 * i
  local ok, reply = pcall(record, KEYS[k], KEYS[k + 1], ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  if ok then
    out[i] = reply
  else
    out[i] = {-1, type(reply) == 'table' and tostring(reply.err) or tostring(reply)}
  end
end
return out
