/**
 * A dead letter's side of strict order (DLQ_ORDERING_MODE=strict): the user of an ordered lane
 * whose later messages may wait behind it until a pass replays or purges it
 * (shared/stage/dead-letter-holds.ts). The user comes from the `x-postmaster-user` header or the
 * envelope, never from the routing key (which names a shard).
 */
import type { HeldDeadLetter } from '../../shared/stage/dead-letter-holds.js';
import { laneOf, STAGES } from '../../shared/amqp/topology/names.js';
import type { DeadLetter } from './dead-letter.js';

/** Null for a dead letter no user can wait for: an urgent lane's, or one without user or id. */
export function heldDeadLetter(dl: DeadLetter): HeldDeadLetter | null {
  const stage = STAGES.find((s) => s === dl.stage);
  if (!stage || !dl.user || !dl.id || dl.lane !== laneOf(stage, 'ordered')) return null;
  return { stage, user: dl.user, id: dl.id };
}
