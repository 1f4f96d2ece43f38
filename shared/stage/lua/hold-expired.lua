-- Forgets a held user whose hold has expired (its TTL ran out) or was ended by the replayer.
-- KEYS: list, shardSet. ARGV: user.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
