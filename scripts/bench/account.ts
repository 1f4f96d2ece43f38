/**
 * Accounting for every accepted message by id, once the services have stopped: what the provider
 * received (the provider's ledger), and what waits in the broker — read by consuming every queue of
 * the topology with raw amqplib (auto-ack: the run is over and its vhost is deleted next). Counting
 * by id rather than by depth keeps a copy the broker made (at-least-once dead-lettering out of a
 * retry tier can publish twice) from hiding a message that is missing.
 */
import amqplib from 'amqplib';
import type { LedgerClient } from './provider.js';
import { sleep } from '../lib/wait.js';

export interface Account {
  accepted: number;
  /** Distinct accepted ids the provider received. */
  delivered: number;
  /** Distinct accepted ids waiting in a queue (lanes and retry tiers), not delivered. */
  queued: number;
  /** Distinct accepted ids in the DLQ, neither delivered nor queued elsewhere. */
  deadLettered: number;
  /** Accepted ids found nowhere. */
  lost: number;
  /** Copies beyond the first of the same id in the broker. */
  brokerDuplicates: number;
  /** Ids in the broker that were never answered 202 (a publish whose 503 came before its late confirm). */
  unacknowledgedButQueued: number;
  /** Messages read out of the broker, by queue. */
  byQueue: Record<string, number>;
}

/** Consumes every message of `queues`; stops when `expected` were read and none came for `quietMs`. */
export async function drainIds(
  amqpUrl: string,
  queues: string[],
  expected: number,
  timeoutMs: number,
  quietMs = 2000,
): Promise<{ ids: Map<string, number>; byQueue: Record<string, number> }> {
  const ids = new Map<string, number>();
  const byQueue: Record<string, number> = {};
  let read = 0;
  let lastAt = Date.now();
  const conn = await amqplib.connect(amqpUrl);
  try {
    for (const q of queues) {
      const ch = await conn.createChannel();
      byQueue[q] = 0;
      await ch.consume(
        q,
        (msg) => {
          if (!msg) return;
          const id = String(msg.properties.messageId ?? '');
          ids.set(id, (ids.get(id) ?? 0) + 1);
          byQueue[q]++;
          read++;
          lastAt = Date.now();
        },
        { noAck: true },
      );
    }
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && !(read >= expected && Date.now() - lastAt >= quietMs)) await sleep(200);
    return { ids, byQueue };
  } finally {
    await conn.close().catch(() => {});
  }
}

/** Ids of every ledger entry. */
export async function deliveredIds(ledger: LedgerClient): Promise<Set<string>> {
  const out = new Set<string>();
  for (const e of await ledger.entriesAfter(0)) if (e.id) out.add(e.id);
  return out;
}

export function account(
  accepted: string[],
  delivered: Set<string>,
  queued: Map<string, number>,
  dlq: Map<string, number>,
  byQueue: Record<string, number>,
): Account {
  const acceptedSet = new Set(accepted);
  let inQueues = 0;
  let inDlq = 0;
  let lost = 0;
  for (const id of acceptedSet) {
    if (delivered.has(id)) continue;
    if (queued.has(id)) inQueues++;
    else if (dlq.has(id)) inDlq++;
    else lost++;
  }
  let brokerDuplicates = 0;
  let unacknowledgedButQueued = 0;
  for (const m of [queued, dlq]) {
    for (const [id, copies] of m) {
      brokerDuplicates += copies - 1;
      if (!acceptedSet.has(id)) unacknowledgedButQueued++;
    }
  }
  let deliveredAccepted = 0;
  for (const id of delivered) if (acceptedSet.has(id)) deliveredAccepted++;
  return {
    accepted: acceptedSet.size,
    delivered: deliveredAccepted,
    queued: inQueues,
    deadLettered: inDlq,
    lost,
    brokerDuplicates,
    unacknowledgedButQueued,
    byQueue,
  };
}
