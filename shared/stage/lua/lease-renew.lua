-- Renews the lease if it is ours. KEYS: lease. ARGV: owner, ttlMs.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end
