-- Records a handled dead letter once, and bumps `scanned` and the given counters: 0 when it was
-- recorded already. KEYS: set, state. ARGV: key, then one counter name per item.
if redis.call('SADD', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HINCRBY', KEYS[2], 'scanned', 1)
for i = 2, #ARGV do redis.call('HINCRBY', KEYS[2], ARGV[i], 1) end
return 1
