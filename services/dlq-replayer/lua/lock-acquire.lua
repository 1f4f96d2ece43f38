-- Takes a free lock or confirms we hold it (returns ''); else returns the holder.
-- KEYS: lock. ARGV: owner.
local cur = redis.call('GET', KEYS[1])
if not cur or cur == ARGV[1] then redis.call('SET', KEYS[1], ARGV[1]) return '' end
return cur
