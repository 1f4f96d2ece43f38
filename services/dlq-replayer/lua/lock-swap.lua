-- Compare-and-set (take over from a finished job): 1 when swapped. KEYS: lock. ARGV: expected, next.
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2]) return 1 end
return 0
