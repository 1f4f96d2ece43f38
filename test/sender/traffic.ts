/**
 * Helpers of the sender tests: send many users' messages through the ingress (each user's in order,
 * users in parallel) and measure rates on the simulator's ledger.
 */
import { expect } from 'chai';
import { newEnvelope } from '../../shared/domain/envelope.js';
import { publishToStage } from '../../shared/amqp/publish.js';
import type { Fleet } from '../support/fleet.js';

export interface Sent {
  /** Envelope ids per user, in the order the ingress accepted them. */
  byUser: Map<string, string[]>;
  ids: string[];
  /** When each id was accepted (202) or publish-confirmed, ms. */
  at: Map<string, number>;
}

/** `users` × `perUser` text messages; `parallel` users at a time, each user's messages one after another. */
export async function sendToUsers(fleet: Fleet, users: string[], perUser: number, parallel = 20, extra: Record<string, unknown> = {}): Promise<Sent> {
  const byUser = new Map<string, string[]>();
  const at = new Map<string, number>();
  const queue = [...users];
  const worker = async () => {
    for (let user = queue.shift(); user !== undefined; user = queue.shift()) {
      const ids: string[] = [];
      byUser.set(user, ids);
      for (let i = 0; i < perUser; i++) {
        const res = await fleet.send({ to: user, type: 'text', text: { body: `m${i}` }, ...extra });
        expect(res.status, JSON.stringify(res.body)).to.equal(202);
        ids.push(res.body.id);
        at.set(res.body.id, Date.now());
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, users.length) }, worker));
  return { byUser, ids: [...byUser.values()].flat(), at };
}

/**
 * Publishes `perUser` outbound envelopes per user straight into the send stage (what the dispatcher
 * does), so that a test of the sender is not paced by the ingress. Each user's in order.
 */
export async function publishToSenders(fleet: Fleet, users: string[], perUser: number, parallel = 20): Promise<Sent> {
  const rt = fleet.senders[0].rt;
  const byUser = new Map<string, string[]>();
  const at = new Map<string, number>();
  const queue = [...users];
  const worker = async () => {
    for (let user = queue.shift(); user !== undefined; user = queue.shift()) {
      const ids: string[] = [];
      byUser.set(user, ids);
      for (let i = 0; i < perUser; i++) {
        const env = newEnvelope({ kind: 'outbound', user, priority: 'normal', payload: { type: 'text', text: { body: `m${i}` } } });
        await publishToStage(rt, 'send', env);
        ids.push(env.id);
        at.set(env.id, Date.now());
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, users.length) }, worker));
  return { byUser, ids: [...byUser.values()].flat(), at };
}

/**
 * Waits until every id of `sent` was accepted by the provider; on time-out says how many are
 * missing (and which, with DEBUG_SENDER_TESTS set).
 */
export async function waitForAll(fleet: Fleet, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const want = new Set(ids);
  for (;;) {
    const got = new Set(fleet.sim.accepted().map((e) => e.id));
    const missing = [...want].filter((id) => !got.has(id));
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      if (process.env.DEBUG_SENDER_TESTS) console.log('missing:', missing.join(' '));
      throw new Error(`timed out after ${timeoutMs} ms: ${missing.length} of ${ids.length} messages never reached the provider`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** `n` distinct recipients, e.g. 15550100000, 15550100001, … */
export function recipients(n: number, base = 15550100000): string[] {
  return Array.from({ length: n }, (_, i) => String(base + i));
}

/** The most timestamps inside any window [t, t + windowMs). */
export function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  for (let lo = 0, hi = 0; hi < t.length; hi++) {
    while (t[hi] - t[lo] >= windowMs) lo++;
    best = Math.max(best, hi - lo + 1);
  }
  return best;
}

/** Events per second over [from, to]. */
export function ratePerSecond(times: number[], from: number, to: number): number {
  const n = times.filter((t) => t >= from && t <= to).length;
  return to > from ? (n * 1000) / (to - from) : 0;
}
