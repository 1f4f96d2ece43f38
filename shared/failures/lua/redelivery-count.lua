-- Counts one more redelivery; returns the count after it. KEYS: count. ARGV: ttlS.
local n = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1])
return n
