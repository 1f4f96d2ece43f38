-- Drops a pending claim, only if it is still ours; with an id, marks it uncertain instead (the
-- message may be in the broker under that id).
-- KEYS: the claims. ARGV: token, uncertainId ('' for none), per key.
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[2 * i - 1] then
    if ARGV[2 * i] ~= '' then redis.call('SET', KEYS[i], 'u:' .. ARGV[2 * i], 'KEEPTTL')
    else redis.call('DEL', KEYS[i]) end
  end
end
return 1
