-- The status moves of one turn of the event loop (TickBatch), in one call: one round trip for them
-- all. Per record — KEYS: record, wamid mapping (or the record again); ARGV: RECORD_ARGS of
-- status.ts. Returns the result of each record (1 moved, 0 stale, -1 missing).
--- @include "status-record"
local out = {}
for i = 1, #KEYS / 2 do
  local a = (i - 1) * RECORD_ARGS
  out[i] = record(KEYS[2 * i - 1], KEYS[2 * i], unpack(ARGV, a + 1, a + RECORD_ARGS))
end
return out
