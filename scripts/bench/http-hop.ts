/**
 * The raw HTTP hop: a bare keep-alive undici pool posting the Cloud API request of the bench
 * message to the run's provider (http-server.ts, its own process), with the sender's concurrency
 * (its provider pool's connection count), one request per connection at a time.
 */
import { Pool } from 'undici';
import { CpuMeter, perMessage } from './cpu.js';
import { cloudApiBody } from './message.js';
import type { Provider } from './provider.js';
import type { HopResult } from './raw-hop.js';

export interface HttpHopOptions {
  provider: Provider;
  count: number;
  concurrency: number;
  timeoutMs: number;
}

export async function httpHop(o: HttpHopOptions): Promise<HopResult> {
  const server = o.provider.child;
  const pool = new Pool(o.provider.url, { connections: o.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const body = cloudApiBody();
  const headers = { authorization: 'Bearer bench', 'content-type': 'application/json' };
  try {
    // Warm the connections so the figure is the steady state, as for the long-lived sender.
    await Promise.all(Array.from({ length: o.concurrency }, () => post(pool, body, headers)));
    const deadline = Date.now() + o.timeoutMs;
    let next = 0;
    const meter = new CpuMeter({ server: server.pid }, 'undici-client');
    const started = process.hrtime.bigint();
    const lane = async () => {
      while (next < o.count) {
        next++;
        await post(pool, body, headers);
        if (Date.now() > deadline) throw new Error(`http hop: timed out after ${o.timeoutMs} ms at ${next} of ${o.count}`);
      }
    };
    await Promise.all(Array.from({ length: o.concurrency }, lane));
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    return { count: o.count, seconds, perSecond: o.count / seconds, cpu: perMessage(meter.stop(), o.count) };
  } finally {
    await pool.close().catch(() => {});
  }
}

async function post(pool: Pool, body: string, headers: Record<string, string>): Promise<void> {
  const res = await pool.request({ method: 'POST', path: '/v21.0/100000000000001/messages', headers, body });
  await res.body.json();
  if (res.statusCode !== 200) throw new Error(`http hop: status ${res.statusCode}`);
}
