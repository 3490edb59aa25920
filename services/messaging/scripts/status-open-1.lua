--[[
  Opens the sender's status of a recorded message: one command instead of a MULTI of HSET and
  PEXPIRE (four commands on the wire), so it travels in the same auto-pipelined write as the
  other records of its tick.

  KEYS[1] message status hash (sender's hash tag)

  ARGV[1] to (recipient)
  ARGV[2] offset in the recipient's history
  ARGV[3] ts, ms
  ARGV[4] lifetime, ms (the de-duplication window)
]]
redis.call('HSET', KEYS[1], 'to', ARGV[1], 'offset', ARGV[2], 'ts', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
