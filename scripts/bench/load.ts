/**
 * Load on the ingress over keep-alive HTTP: closed loop (as fast as it takes them) and open loop
 * (paced), one message per request or batches. A 503 (broker alarm, in-flight cap) is retried after
 * a short pause, as a client honouring Retry-After would; anything else non-2xx fails the run.
 */
import { Pool } from 'undici';
import { sendRequest, users as makeUsers } from './message.js';
import { sleep } from '../lib/wait.js';

/** Pause after a 503 (the ingress's Retry-After, shortened: the bench wants the capacity, not the politeness). */
const RETRY_PAUSE_MS = 50;
const MAX_BATCH = 500;

export interface Accepted {
  /** Envelope ids in acceptance order. */
  ids: string[];
  /** Wall clock (ms since epoch) of the first request and of the last 202. */
  firstSentAt: number;
  lastAcceptedAt: number;
  /** Messages answered 503 (and sent again): the ingress could not get the broker's confirm in time. */
  retried503: number;
}

export class IngressClient {
  private readonly pool: Pool;
  private readonly headers: Record<string, string>;

  constructor(url: string, token: string, connections: number) {
    this.pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
    this.headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  }

  /** One send; resolves to the envelope id once accepted (retrying 503s until the deadline). */
  async send(body: Record<string, unknown>, deadline: number, onRetry?: (messages: number) => void): Promise<string> {
    const payload = JSON.stringify(body);
    for (;;) {
      const res = await this.pool.request({ method: 'POST', path: '/v1/messages', headers: this.headers, body: payload });
      const answer = (await res.body.json()) as { id?: string };
      if (res.statusCode === 202) return answer.id!;
      if (res.statusCode !== 503) throw new Error(`ingress answered ${res.statusCode}: ${JSON.stringify(answer)}`);
      if (Date.now() > deadline) throw new Error('ingress kept answering 503 until the deadline');
      onRetry?.(1);
      await sleep(RETRY_PAUSE_MS);
    }
  }

  /** One batch; resolves to the ids of all its messages, resending the items refused with 503. */
  async batch(bodies: Array<Record<string, unknown>>, deadline: number, onRetry?: (messages: number) => void): Promise<string[]> {
    const ids = new Array<string>(bodies.length);
    let todo = bodies.map((_, i) => i);
    for (;;) {
      const res = await this.pool.request({
        method: 'POST',
        path: '/v1/messages/batch',
        headers: this.headers,
        body: JSON.stringify({ messages: todo.map((i) => bodies[i]) }),
      });
      const answer = (await res.body.json()) as { results?: Array<{ index: number; status: number; id?: string; error?: string }> };
      const left: number[] = [];
      if (res.statusCode === 503) left.push(...todo);
      else if (res.statusCode === 202 || res.statusCode === 207) {
        for (const r of answer.results ?? []) {
          if (r.status === 202) ids[todo[r.index]] = r.id!;
          else if (r.status === 503) left.push(todo[r.index]);
          else throw new Error(`batch item answered ${r.status}: ${r.error}`);
        }
      } else throw new Error(`ingress batch answered ${res.statusCode}: ${JSON.stringify(answer).slice(0, 300)}`);
      if (left.length === 0) return ids;
      if (Date.now() > deadline) throw new Error('ingress kept refusing batch items (503) until the deadline');
      onRetry?.(left.length);
      todo = left;
      await sleep(RETRY_PAUSE_MS);
    }
  }

  async close(): Promise<void> {
    await this.pool.close().catch(() => {});
  }
}

export interface ClosedLoadOptions {
  count: number;
  users: number;
  concurrency: number;
  /** 1 = single POST /v1/messages; more = POST /v1/messages/batch of this size (≤ 500). */
  batchSize: number;
  /** Give up on 503s after this (ms since epoch): the run fails. */
  deadline: number;
  /** Start no new request after this (ms since epoch): the load ends early, what was accepted counts. */
  stopAt?: number;
  onProgress?: (accepted: number) => void;
}

/**
 * Sends `count` messages round-robin over `users` recipients as fast as the ingress takes them
 * (fewer if `stopAt` comes first: `ids` says how many were accepted).
 */
export async function closedLoop(client: IngressClient, o: ClosedLoadOptions): Promise<Accepted> {
  const to = makeUsers(o.users);
  const size = Math.min(Math.max(1, o.batchSize), MAX_BATCH);
  const ids: string[] = [];
  let next = 0;
  let retried503 = 0;
  const onRetry = (messages: number) => void (retried503 += messages);
  const firstSentAt = Date.now();
  let lastAcceptedAt = firstSentAt;
  let sinceReport = 0;
  const lane = async () => {
    while (next < o.count && !(o.stopAt !== undefined && Date.now() > o.stopAt)) {
      const from = next;
      const n = Math.min(size, o.count - from);
      next += n;
      const bodies = Array.from({ length: n }, (_, k) => sendRequest(to[(from + k) % to.length]));
      const got = size === 1 ? [await client.send(bodies[0], o.deadline, onRetry)] : await client.batch(bodies, o.deadline, onRetry);
      ids.push(...got);
      lastAcceptedAt = Date.now();
      sinceReport += n;
      if (sinceReport >= 10_000) {
        sinceReport = 0;
        o.onProgress?.(ids.length);
      }
    }
  };
  await Promise.all(Array.from({ length: o.concurrency }, lane));
  return { ids, firstSentAt, lastAcceptedAt, retried503 };
}

export interface OpenLoadOptions {
  /** Messages per second. */
  ratePerSecond: number;
  durationMs: number;
  users: number;
  /** Messages per request: 1 = single POST /v1/messages, more = POST /v1/messages/batch. */
  batchSize?: number;
  priority?: 'normal' | 'urgent';
  deadline: number;
}

/**
 * Open loop: request i leaves at start + i × batchSize / rate whether or not earlier ones were
 * answered, so a slow pipeline cannot slow the offered load down (no coordinated omission).
 */
export async function openLoop(client: IngressClient, o: OpenLoadOptions): Promise<Accepted> {
  const to = makeUsers(o.users);
  const size = Math.min(Math.max(1, o.batchSize ?? 1), MAX_BATCH);
  const requests = Math.max(1, Math.round((o.ratePerSecond * o.durationMs) / 1000 / size));
  const everyMs = (size * 1000) / o.ratePerSecond;
  const ids: string[] = [];
  const pending: Array<Promise<void>> = [];
  let retried503 = 0;
  const onRetry = (m: number) => void (retried503 += m);
  const start = Date.now();
  let lastAcceptedAt = start;
  let sent = 0;
  for (let i = 0; i < requests;) {
    // Yield on every round, even when the next request is already due: a loop that only slept when
    // it was more than a timer tick early never let the event loop write what it had queued when the
    // spacing was under 1 ms (single POSTs at 1,100/s), and the whole run left at the end as one
    // burst, measuring full speed instead of the rate asked for. What is due by
    // the time the loop runs again leaves together.
    await sleep(Math.max(1, start + i * everyMs - Date.now()));
    const now = Date.now();
    // Everything due by now leaves now (timers are coarser than the spacing at high rates).
    for (; i < requests && start + i * everyMs <= now; i++) {
      const bodies = Array.from({ length: size }, () => sendRequest(to[sent++ % to.length], o.priority ?? 'normal'));
      const answer = size === 1 ? client.send(bodies[0], o.deadline, onRetry).then((id) => [id]) : client.batch(bodies, o.deadline, onRetry);
      pending.push(
        answer.then((got) => {
          ids.push(...got);
          lastAcceptedAt = Date.now();
        }),
      );
    }
  }
  await Promise.all(pending);
  return { ids, firstSentAt: start, lastAcceptedAt, retried503 };
}
