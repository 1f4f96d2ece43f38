/**
 * The audit of a chaos scenario, from outside the code under test: the provider simulator's ledger
 * (what reached "WhatsApp"), the DLQ read through raw amqplib, and what the load generator was
 * answered. A message is identified by its text (`<user> #<seq>`), so a copy sent under another
 * envelope id (a retried publish the client was never told about) still counts as a duplicate.
 */
import { H as HEADERS } from '../../shared/domain/envelope.js';
import type { LedgerEntry } from '../../services/simulator/server.js';
import { drainQueue } from '../lib/dlq.js';
import { queueDepths } from '../lib/isolation.js';
import type { AcceptedMessage } from './load.js';

export interface DeadLetter {
  key: string | null;
  reason: string | null;
}

export interface Audit {
  accepted: number;
  delivered: number;
  deadLettered: number;
  lost: number;
  duplicated: number;
  /** Messages delivered after a later message of the same user. */
  misordered: number;
  misorderedUsers: string[];
  /** For up to 5 misordered users: their accepted sequence numbers in the order they reached the provider. */
  misorderedSample: string[];
  lostSample: string[];
  deadReasons: Record<string, number>;
}

const TEXT = /^(\d+) #(\d+)$/;

function keyOfText(text: unknown): string | null {
  const m = typeof text === 'string' ? TEXT.exec(text) : null;
  return m ? `${m[1]} #${m[2]}` : null;
}

/** `<user> #<seq>` of a ledger entry (from the request body the simulator kept). */
export function keyOfEntry(e: LedgerEntry): string | null {
  return keyOfText((e.body as { text?: { body?: unknown } } | undefined)?.text?.body);
}

/** Takes every message of the DLQ (destructive: once, at the end of a scenario). */
export async function drainDeadLetters(amqpUrl: string, queue: string): Promise<DeadLetter[]> {
  return (await drainQueue(amqpUrl, queue)).map((m) => {
    let key: string | null = null;
    try {
      key = keyOfText((JSON.parse(m.body) as { payload?: { text?: { body?: unknown } } }).payload?.text?.body);
    } catch {
      // not an envelope: no key
    }
    const h = m.headers as Record<string, unknown>;
    const death = (h['x-death'] as Array<{ reason?: string }> | undefined)?.[0]?.reason;
    const cls = h[HEADERS.failureClass];
    const reason = cls ? `${String(cls)}${h[HEADERS.failureCode] ? `:${String(h[HEADERS.failureCode])}` : ''}` : death ? `x-death:${death}` : null;
    return { key, reason };
  });
}

/** How many messages of the DLQ there are now (without taking them). */
export async function deadLetterCount(amqpUrl: string, queue: string): Promise<number> {
  return (await queueDepths(amqpUrl, [queue]))[queue];
}

/** Accepted messages that have reached the provider at least once. */
export function deliveredCount(ledger: LedgerEntry[], accepted: Set<string>): number {
  const seen = new Set<string>();
  for (const e of ledger) {
    const k = keyOfEntry(e);
    if (k && accepted.has(k)) seen.add(k);
  }
  return seen.size;
}

export function acceptedKeys(accepted: Map<string, AcceptedMessage[]>): Set<string> {
  return new Set([...accepted.values()].flat().map((m) => `${m.user} #${m.seq}`));
}

export function audit(accepted: Map<string, AcceptedMessage[]>, ledger: LedgerEntry[], dead: DeadLetter[]): Audit {
  const keys = acceptedKeys(accepted);
  const copies = new Map<string, number>();
  const firstOrder = new Map<string, number[]>(); // user → seqs in order of first delivery
  for (const e of ledger) {
    const k = keyOfEntry(e);
    if (!k || !keys.has(k)) continue;
    const n = (copies.get(k) ?? 0) + 1;
    copies.set(k, n);
    if (n > 1) continue;
    const [user, seq] = k.split(' #');
    const list = firstOrder.get(user) ?? [];
    list.push(Number(seq));
    firstOrder.set(user, list);
  }
  const deadReasons: Record<string, number> = {};
  const deadWithReason = new Set<string>();
  for (const d of dead) {
    const r = d.reason ?? 'no reason';
    deadReasons[r] = (deadReasons[r] ?? 0) + 1;
    if (d.key && d.reason && keys.has(d.key)) deadWithReason.add(d.key);
  }
  let misordered = 0;
  const misorderedUsers: string[] = [];
  const misorderedSample: string[] = [];
  for (const [user, seqs] of firstOrder) {
    let max = -1;
    let bad = 0;
    for (const s of seqs) {
      if (s < max) bad++;
      max = Math.max(max, s);
    }
    if (bad) misorderedUsers.push(user);
    if (bad && misorderedSample.length < 5) misorderedSample.push(`${user}: ${seqs.join(',')}`);
    misordered += bad;
  }
  const lostKeys = [...keys].filter((k) => !copies.has(k) && !deadWithReason.has(k));
  return {
    accepted: keys.size,
    delivered: copies.size,
    deadLettered: [...deadWithReason].filter((k) => !copies.has(k)).length,
    lost: lostKeys.length,
    duplicated: [...copies.values()].reduce((n, c) => n + c - 1, 0),
    misordered,
    misorderedUsers,
    misorderedSample,
    lostSample: lostKeys.slice(0, 10),
    deadReasons,
  };
}

/**
 * Recovery time: from the fault's end until deliveries run at ≥ 80 % of the steady rate (measured
 * before the fault) over a 2-second window. 0 when they never fell below it; null when they never
 * got back to it.
 */
export function recoveryMs(ledger: LedgerEntry[], t: { loadStart: number; faultStart: number; faultEnd: number; nominalRate: number }): number | null {
  const times = ledger.map((e) => e.receivedAt).sort((a, b) => a - b);
  const from = t.loadStart + 3000;
  const steadyS = (t.faultStart - from) / 1000;
  const steady = steadyS >= 2 ? times.filter((x) => x >= from && x < t.faultStart).length / steadyS : t.nominalRate;
  const need = 0.8 * Math.max(steady, 1) * 2;
  const last = times[times.length - 1] ?? t.faultEnd;
  let lo = 0;
  for (let start = t.faultEnd; start <= last; start += 100) {
    while (lo < times.length && times[lo] < start) lo++;
    let hi = lo;
    while (hi < times.length && times[hi] < start + 2000) hi++;
    if (hi - lo >= need) return start - t.faultEnd;
  }
  return null;
}

/** The longest time without a delivery from the fault's start until `untilMs` (how long users waited). */
export function longestGapMs(ledger: LedgerEntry[], fromMs: number, untilMs: number): number {
  const times = [
    fromMs,
    ...ledger
      .map((e) => e.receivedAt)
      .filter((x) => x >= fromMs && x <= untilMs)
      .sort((a, b) => a - b),
  ];
  let gap = 0;
  for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
  return gap;
}
