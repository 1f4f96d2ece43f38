/**
 * The bare hops (one queue, the shard topology, HTTP, BullMQ), each run `trials` times,
 * interleaved, and reported by its median trial: a hop lasts seconds, so one trial alone says as
 * much about what else the shared machine was doing at that moment as about the hop.
 */
import { bareChain, type BareChainResult } from './bare-chain.js';
import { bullmqHop } from './bullmq-hop.js';
import { hopLatency, type HopLatency } from './hop-latency.js';
import type { Pids } from './cpu.js';
import { httpHop } from './http-hop.js';
import type { BenchSpace } from './isolation.js';
import { MGMT_URL, REDIS_URL } from './isolation.js';
import type { Log } from './pipeline.js';
import { rawHop, type HopResult } from './raw-hop.js';
import { SENDER_CONNECTIONS, type Sizes } from './sizes.js';
import { topologyHop } from './topology-hop.js';

export interface Hops {
  raw: HopResult;
  /** The raw hop's work through a stage's consistent-hash exchange and shard queues. */
  topology: HopResult;
  http: HopResult;
  bullmq: HopResult;
  /** One broker hop's latency at a low rate, Nagle on (amqplib's default) and off. */
  hopLatency: HopLatency;
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

export async function measureHops(space: BenchSpace, s: Sizes, infra: Pids, log: Log): Promise<Hops> {
  const timeoutMs = s.drainTimeoutMs;
  const raw: HopResult[] = [];
  const topology: HopResult[] = [];
  const http: HopResult[] = [];
  const bullmq: HopResult[] = [];
  const cfg = space.config();
  log(`hops, ${s.hopTrials} trials each: raw ${s.raw.count} messages (confirm window ${s.raw.window}), the same through ${cfg.shards} shards, http ${s.http.count} requests (${SENDER_CONNECTIONS} connections), bullmq ${s.bullmq.count} jobs`);
  for (let t = 0; t < s.hopTrials; t++) {
    raw.push(await rawHop({ amqpUrl: space.amqpUrl, ...s.raw, timeoutMs, pids: pick(infra, 'rabbitmq') }));
    topology.push(
      await topologyHop({ amqpUrl: space.amqpUrl, vhost: space.vhost, managementUrl: MGMT_URL, cfg, count: s.raw.count, window: s.raw.window, users: s.pipeline.users, timeoutMs, pids: pick(infra, 'rabbitmq') }),
    );
    http.push(await httpHop({ count: s.http.count, concurrency: SENDER_CONNECTIONS, timeoutMs }));
    bullmq.push(await bullmqHop({ redisUrl: REDIS_URL, prefix: `${space.redisKeyPrefix}:bench-bullmq`, ...s.bullmq, timeoutMs, pids: pick(infra, 'redis') }));
    log(`hops trial ${t + 1}: raw ${raw[t].perSecond.toFixed(0)}/s, through the shards ${topology[t].perSecond.toFixed(0)}/s, http ${http[t].perSecond.toFixed(0)}/s, bullmq ${bullmq[t].perSecond.toFixed(0)}/s`);
  }
  const latency = await hopLatency({ amqpUrl: space.amqpUrl, ...s.hopLatency, timeoutMs });
  log(`hop latency, one message every ${s.hopLatency.intervalMs} ms: p50/p99 ${latency.nagle.join('/')} ms with Nagle, ${latency.noDelay.join('/')} ms with noDelay`);
  return { raw: median(raw), topology: median(topology), http: median(http), bullmq: median(bullmq), hopLatency: latency };
}

/** Seconds of the paced topology hop. */
const PACED_SECONDS = 8;

/**
 * The topology hop again, paced at `rate` (the pipeline's) in the pipeline's batches: what one hop
 * costs the broker when it is not saturated, against the saturated hop's cost that `limit_per_s`
 * assumes.
 */
export async function measurePacedHop(space: BenchSpace, s: Sizes, infra: Pids, rate: number, log: Log): Promise<HopResult> {
  const cfg = space.config();
  const count = Math.max(s.pipeline.batchSize, Math.round(rate * PACED_SECONDS));
  const r = await topologyHop({
    amqpUrl: space.amqpUrl, vhost: space.vhost, managementUrl: MGMT_URL, cfg, count, window: s.raw.window, users: s.pipeline.users,
    timeoutMs: s.drainTimeoutMs, pids: pick(infra, 'rabbitmq'), rate, batch: s.pipeline.batchSize,
  });
  log(`topology hop paced at ${rate.toFixed(0)}/s: ${count} messages; CPU ms/msg ${JSON.stringify(r.cpu?.byProcess)}`);
  return { ...r, rate };
}

/**
 * The bare chain (bare-chain.ts) under the pipeline's load: the limit's legs as the fleet's
 * processes on the lanes' topology, with nothing else; then its latency at `latencyRate` (the
 * pipeline's latency load: half the pipeline's rate, in its batches).
 */
export async function measureBareChain(space: BenchSpace, s: Sizes, infra: Pids, latencyRate: number, log: Log): Promise<BareChainResult> {
  const p = s.pipeline;
  const r = await bareChain({
    amqpUrl: space.amqpUrl, vhost: space.vhost, managementUrl: MGMT_URL, cfg: space.config(), warmup: p.warmup, count: p.count, users: p.users,
    window: p.concurrency * p.batchSize, timeoutMs: s.drainTimeoutMs, pids: pick(infra, 'rabbitmq'),
    latency: { rate: latencyRate, batch: p.batchSize, durationMs: s.latency.durationMs },
  });
  log(`bare chain: ${r.perSecond.toFixed(0)}/s; CPU ms/msg ${JSON.stringify(r.cpu?.byProcess)}; at ${latencyRate.toFixed(0)}/s p50 ${r.latency?.p50} ms, p99 ${r.latency?.p99} ms`);
  return r;
}
