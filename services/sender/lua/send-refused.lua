-- KEYS: sending; ARGV: replica. Clears the mark only if this replica set it: after a hand-over the
-- shard's next owner may have marked the message already.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
