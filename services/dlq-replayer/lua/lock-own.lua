-- Renews or releases only our own lock: 1 when it was ours. KEYS: lock. ARGV: owner, ttlMs (0 = delete).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[2] == '0' then redis.call('DEL', KEYS[1]) else redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 1
