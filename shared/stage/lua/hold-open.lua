-- open(list, back, nowMs): opens a hold that is not there (the first listed id becomes the head now).
local function open(list, back, now)
  if redis.call('LLEN', list) == 0 then
    redis.call('DEL', back)
    redis.call('HSET', back, SINCE, now)
  end
end
