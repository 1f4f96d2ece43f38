-- Pending → done, keeping the TTL; only where the claim is still ours.
-- KEYS: the claims. ARGV: token, value, per key.
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2 * i - 1] then redis.call('SET', KEYS[i], ARGV[2 * i], 'KEEPTTL') end
end
return 1
