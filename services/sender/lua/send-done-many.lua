-- The sent records of one turn of the event loop (send-ledger.ts), in one call. Per message —
-- KEYS: sent, sending, status record, wamid mapping (or the record again); ARGV: the sent value,
-- the fallback reason ('' when none), then RECORD_ARGS arguments of the status record
-- (shared/domain/status.ts). Fixed ARGV first: ttl s. Each dedup record first: it stands even if its
-- status fails.
--- @include "../../../shared/domain/lua/status-record"
local per = 2 + RECORD_ARGS
for i = 1, #KEYS / 4 do
  local k, a = (i - 1) * 4, 1 + (i - 1) * per
  redis.call('SET', KEYS[k + 1], ARGV[a + 1], 'EX', ARGV[1])
  redis.call('DEL', KEYS[k + 2])
  record(KEYS[k + 3], KEYS[k + 4], unpack(ARGV, a + 3, a + per))
  if ARGV[a + 2] ~= '' then redis.call('HSET', KEYS[k + 3], 'fallback', ARGV[a + 2]) end
end
return 1
