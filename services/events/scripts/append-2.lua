--[[
  Appends one write batch of a node's events to its stream and names the node in the set of
  nodes that have a stream: one command and one round trip per batch, not one per event.

  KEYS[1] the node's stream
  KEYS[2] the set of node ids with a stream (another slot: one Redis, as the presence store)
  ARGV[1] the node id
  ARGV[2] entries kept in the stream (approximate trim)
  ARGV[3..] the events, in order, each the JSON of field `d`

  An error part way leaves the entries before it written (a script is not rolled back): the
  caller retries the whole batch and the presence service drops repeated sequence numbers.

  Returns the number of entries appended
]]
redis.call('SADD', KEYS[2], ARGV[1])
for i = 3, #ARGV do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[i])
end
return #ARGV - 2
