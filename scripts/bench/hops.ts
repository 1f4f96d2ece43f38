/**
 * The bare hops that bound the outbound path (one quorum queue, HTTP to the provider), each run
 * `trials` times, interleaved, and reported by its median trial: a hop lasts seconds, so one trial
 * alone says as much about what else the shared machine was doing at that moment as about the hop.
 */
import type { Pids } from './cpu.js';
import { httpHop } from './http-hop.js';
import type { BenchSpace } from './isolation.js';
import type { Log } from './pipeline.js';
import type { Provider } from './provider.js';
import { rawHop, type HopResult } from './raw-hop.js';
import { SENDER_CONNECTIONS, type Sizes } from './sizes.js';

export interface Hops {
  raw: HopResult;
  http: HopResult;
}

/** Just `name`'s pid, when known: the process a hop's CPU is charged to. */
export function pick(pids: Pids, name: string): Pids {
  return pids[name] === undefined ? {} : { [name]: pids[name] };
}

/** The median trial (by rate), with every trial's rate attached. */
function median(trials: HopResult[]): HopResult {
  const sorted = [...trials].sort((a, b) => a.perSecond - b.perSecond);
  return { ...sorted[Math.floor(sorted.length / 2)], trials: trials.map((t) => t.perSecond) };
}

export async function measureHops(space: BenchSpace, provider: Provider, s: Sizes, infra: Pids, log: Log): Promise<Hops> {
  const timeoutMs = s.drainTimeoutMs;
  const raw: HopResult[] = [];
  const http: HopResult[] = [];
  log(
    `hops, ${s.hopTrials} trials each: raw ${s.raw.count} messages (confirm window ${s.raw.window}), http ${s.http.count} requests (${SENDER_CONNECTIONS} connections)`,
  );
  for (let t = 0; t < s.hopTrials; t++) {
    raw.push(await rawHop({ amqpUrl: space.amqpUrl, ...s.raw, timeoutMs, pids: pick(infra, 'rabbitmq') }));
    http.push(await httpHop({ provider, count: s.http.count, concurrency: SENDER_CONNECTIONS, timeoutMs }));
    log(`hops trial ${t + 1}: raw ${raw[t].perSecond.toFixed(0)}/s, http ${http[t].perSecond.toFixed(0)}/s`);
  }
  await provider.ledger.reset();
  return { raw: median(raw), http: median(http) };
}
