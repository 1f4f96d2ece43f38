-- KEYS: recipient's penalty, the number's pair marker; ARGV: now, until. Keeps the later deadline in
-- both; returns the recipient's.
local now = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local function later(key)
  local cur = tonumber(redis.call('GET', key) or '0')
  if wanted > cur then
    redis.call('SET', key, ARGV[2], 'PX', math.max(1, math.ceil(wanted - now)))
    return wanted
  end
  return cur
end
later(KEYS[2])
return tostring(later(KEYS[1]))
