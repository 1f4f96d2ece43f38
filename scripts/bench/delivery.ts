/**
 * Waiting on the provider's ledger: "delivered" is the simulator's count of distinct accepted
 * message ids (accepted − duplicates), read from its own process.
 */
import type { SimClient, SimEntry } from './fleet.js';
import { sleep } from './processes.js';

export async function deliveredCount(sim: SimClient): Promise<number> {
  const s = await sim.stats();
  return s.accepted - s.duplicates;
}

/** Polls until `target` distinct messages were delivered; throws at the deadline saying how far it got. */
export async function waitDelivered(sim: SimClient, target: number, deadline: number, what: string): Promise<void> {
  for (;;) {
    const n = await deliveredCount(sim);
    if (n >= target) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${n} of ${target} delivered at the deadline`);
    await sleep(100);
  }
}

/** The latest ledger entry (receivedAt of the last delivery). */
export async function lastEntry(sim: SimClient): Promise<SimEntry> {
  const { received } = await sim.stats();
  const [e] = await sim.page(received - 1, 1);
  if (!e) throw new Error('the simulator ledger is empty');
  return e;
}

/**
 * Follows the ledger from a sequence number on and keeps the first accepted delivery time of the
 * ids it is told to look for; `poll()` reads only what arrived since the last call.
 */
export class LedgerWatch {
  readonly receivedAt = new Map<string, number>();
  private readonly want = new Set<string>();

  constructor(
    private readonly sim: SimClient,
    private cursor: number,
  ) {}

  static async fromNow(sim: SimClient): Promise<LedgerWatch> {
    return new LedgerWatch(sim, (await sim.stats()).received);
  }

  add(ids: Iterable<string>): void {
    for (const id of ids) this.want.add(id);
  }

  async poll(): Promise<void> {
    for (const e of await this.sim.entriesAfter(this.cursor)) {
      this.cursor = e.seq;
      if (e.id && e.status >= 200 && e.status < 300 && this.want.has(e.id) && !this.receivedAt.has(e.id)) this.receivedAt.set(e.id, e.receivedAt);
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
