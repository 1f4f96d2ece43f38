/**
 * Steady load for a chaos scenario: `ratePerS` messages per second spread over many users, each
 * user sending its messages one after the other (so the order the ingress accepted them in is
 * well defined). Like a careful client: every message carries an idempotency key, and a 503 or a
 * broken connection is retried with the same key until the ingress answers 202 (or 200: the key
 * was already accepted) — only those count as accepted.
 */
import { Agent, request } from 'undici';
import { sleep } from '../lib/wait.js';

export interface AcceptedMessage {
  user: string;
  seq: number;
  id: string;
  at: number;
}

export interface LoadCounts {
  /** Messages answered 202. */
  accepted: number;
  /** Retries answered 200 "duplicate" (the first try had got in; its id is kept). */
  duplicateAnswers: number;
  unavailable: number;
  networkErrors: number;
  otherErrors: number;
  /** Messages never accepted before the load's deadline (not counted anywhere else). */
  gaveUp: number;
}

export interface LoadOptions {
  url: string;
  token: string;
  users: string[];
  ratePerS: number;
  runId: string;
  /** Wait before retrying a 503 or a broken connection (the ingress says 5 s; shortened). */
  retryDelayMs?: number;
  /** How long after `durationMs` messages already started may keep retrying. */
  finishWithinMs?: number;
  /** A share of the users (the first ones) send only scheduled messages, `sendAt` this far ahead. */
  scheduled?: ScheduledShare;
}

export interface ScheduledShare {
  /** 0..1 of the users. */
  share: number;
  aheadMs: number;
}

/** The text a message carries: the audit finds user and sequence in the provider's ledger by it. */
export const textOf = (user: string, seq: number) => `${user} #${seq}`;

export class PacedLoad {
  readonly accepted = new Map<string, AcceptedMessage[]>();
  readonly counts: LoadCounts = { accepted: 0, duplicateAnswers: 0, unavailable: 0, networkErrors: 0, otherErrors: 0, gaveUp: 0 };
  startedAt = 0;
  endedAt = 0;
  private readonly agent = new Agent({ connections: 256, headersTimeout: 30_000, bodyTimeout: 30_000, keepAliveTimeout: 4_000 });
  private readonly next = new Map<string, number>();
  private lastError = '';
  private stopAt = Infinity;
  private readonly scheduledUsers: Set<string>;

  constructor(private readonly o: LoadOptions) {
    for (const u of o.users) this.accepted.set(u, []);
    // Whole users, so that each user's messages stay in the order it sent them.
    this.scheduledUsers = new Set(o.users.slice(0, Math.ceil((o.scheduled?.share ?? 0) * o.users.length)));
  }

  get acceptedCount(): number {
    return this.counts.accepted + this.counts.duplicateAnswers;
  }

  /** Runs the load until finishAt(); resolves when every message started has been accepted or given up. */
  async run(): Promise<void> {
    this.startedAt = Date.now();
    const giveUpAt = () => this.stopAt + (this.o.finishWithinMs ?? 60_000);
    const idle = [...this.o.users];
    const inFlight = new Set<Promise<void>>();
    let credits = 0;
    let last = Date.now();
    while (Date.now() < this.stopAt) {
      const now = Date.now();
      credits = Math.min(credits + ((now - last) / 1000) * this.o.ratePerS, Math.max(1, this.o.ratePerS / 2));
      last = now;
      while (credits >= 1 && idle.length > 0) {
        credits -= 1;
        const user = idle.shift()!;
        const p = this.sendNext(user, giveUpAt).finally(() => {
          inFlight.delete(p);
          idle.push(user);
        });
        inFlight.add(p);
      }
      await sleep(10);
    }
    await Promise.all([...inFlight]);
    this.endedAt = Date.now();
    await this.agent.close();
  }

  /** The load stops starting new messages at `at` (ms epoch); until then it runs. */
  finishAt(at: number): void {
    this.stopAt = at;
  }

  describeLastError(): string {
    return this.lastError;
  }

  private async sendNext(user: string, giveUpAt: () => number): Promise<void> {
    const seq = this.next.get(user) ?? 0;
    this.next.set(user, seq + 1);
    // Computed once: every retry carries the same request, sendAt included.
    const sendAt = this.scheduledUsers.has(user) ? { sendAt: new Date(Date.now() + this.o.scheduled!.aheadMs).toISOString() } : {};
    const body = JSON.stringify({ to: user, type: 'text', text: { body: textOf(user, seq) }, idempotencyKey: `${this.o.runId}:${user}:${seq}`, ...sendAt });
    while (Date.now() < giveUpAt()) {
      try {
        const res = await request(`${this.o.url}/v1/messages`, {
          method: 'POST',
          dispatcher: this.agent,
          headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/json' },
          body,
        });
        const text = await res.body.text();
        if (res.statusCode === 202 || res.statusCode === 200) {
          const id = String((JSON.parse(text) as { id: string }).id);
          this.accepted.get(user)!.push({ user, seq, id, at: Date.now() });
          if (res.statusCode === 202) this.counts.accepted++;
          else this.counts.duplicateAnswers++;
          return;
        }
        if (res.statusCode === 503) this.counts.unavailable++;
        else {
          this.counts.otherErrors++;
          this.lastError = `${res.statusCode}: ${text.slice(0, 200)}`;
        }
      } catch (err) {
        this.counts.networkErrors++;
        this.lastError = (err as Error).message;
      }
      await sleep(this.o.retryDelayMs ?? 250);
    }
    this.counts.gaveUp++;
  }
}

/** `n` recipients, digits only, distinct per scenario. */
export function usersFor(scenario: number, n: number): string[] {
  return Array.from({ length: n }, (_, i) => `4930${String(scenario).padStart(2, '0')}${String(i).padStart(5, '0')}`);
}
