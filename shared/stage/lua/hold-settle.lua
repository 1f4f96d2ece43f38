-- settle(list, back, waiting, user, nowMs, ttlMs): after a change of the head. A dead head keeps the
-- hold without TTL and the user in `waiting`; anything else leaves `waiting` and refreshes the TTL.
-- Returns 1 when the head is a dead letter.
local function settle(list, back, waiting, user, now, ttl)
  local head = redis.call('LINDEX', list, 0)
  if head and redis.call('HGET', back, head) == DEAD_BACK then
    redis.call('ZADD', waiting, 'NX', now, user)
    redis.call('PERSIST', list)
    redis.call('PERSIST', back)
    return 1
  end
  redis.call('ZREM', waiting, user)
  if head then
    redis.call('PEXPIRE', list, ttl)
    redis.call('PEXPIRE', back, ttl)
  end
  return 0
end
