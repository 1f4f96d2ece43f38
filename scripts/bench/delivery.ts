/**
 * Waiting on the provider's ledger: "delivered" is its count of distinct message ids, read from
 * its own process.
 */
import type { LedgerClient, LedgerEntry } from './provider.js';
import { sleep } from '../lib/wait.js';

export async function deliveredCount(ledger: LedgerClient): Promise<number> {
  return (await ledger.stats()).delivered;
}

/** Polls until `target` distinct messages were delivered; throws at the deadline saying how far it got. */
export async function waitDelivered(ledger: LedgerClient, target: number, deadline: number, what: string): Promise<void> {
  for (;;) {
    const n = await deliveredCount(ledger);
    if (n >= target) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${n} of ${target} delivered at the deadline`);
    await sleep(100);
  }
}

/** The latest ledger entry (receivedAt of the last delivery). */
export async function lastEntry(ledger: LedgerClient): Promise<LedgerEntry> {
  const { received } = await ledger.stats();
  const [e] = await ledger.page(received - 1, 1);
  if (!e) throw new Error('the provider ledger is empty');
  return e;
}

/**
 * Follows the ledger from a sequence number on and keeps the first delivery time of the
 * ids it is told to look for; `poll()` reads only what arrived since the last call.
 */
export class LedgerWatch {
  readonly receivedAt = new Map<string, number>();
  private readonly want = new Set<string>();

  constructor(
    private readonly ledger: LedgerClient,
    private cursor: number,
  ) {}

  static async fromNow(ledger: LedgerClient): Promise<LedgerWatch> {
    return new LedgerWatch(ledger, (await ledger.stats()).received);
  }

  add(ids: Iterable<string>): void {
    for (const id of ids) this.want.add(id);
  }

  async poll(): Promise<void> {
    for (const e of await this.ledger.entriesAfter(this.cursor)) {
      this.cursor = e.seq;
      if (e.id && this.want.has(e.id) && !this.receivedAt.has(e.id)) this.receivedAt.set(e.id, e.receivedAt);
    }
  }

  /** Polls until every id added so far was delivered; throws at the deadline. */
  async waitAll(deadline: number, what: string): Promise<void> {
    for (;;) {
      await this.poll();
      if (this.receivedAt.size >= this.want.size) return;
      if (Date.now() > deadline) throw new Error(`${what}: ${this.receivedAt.size} of ${this.want.size} delivered at the deadline`);
      await sleep(250);
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}
