/**
 * The pipeline figures: sustained throughput (HTTP ingress → … → sender → provider, every message
 * delivered, first request to last delivery, counted at the provider whatever path the messages
 * took) and the latency at half that rate under open-loop paced load (accept → provider receivedAt).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { keyspace } from '../../shared/platform/redis.js';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { walReport, WalWatch, type WalReport } from './broker-wal.js';
import { deliveredCount, lastEntry, LedgerWatch, percentile, waitDelivered } from './delivery.js';
import type { Fleet } from './fleet.js';
import type { LedgerClient } from './provider.js';
import { closedLoop, openLoop, type IngressClient } from './load.js';
import { ulidTime } from './message.js';
import type { LoadShape, Sizes } from './sizes.js';

/** A closed-loop throughput measurement through some ingress to the provider. */
export interface ThroughputResult {
  shape: LoadShape;
  count: number;
  /** Messages / (first request → the provider's receipt of the last one), every message delivered. */
  perSecond: number;
  acceptPerSecond: number;
  seconds: number;
  retried503: number;
  /** CPU ms per message by process over the measured messages (bench = the load generator, provider = the bare server; neither in the total). */
  cpu: { byProcess: Record<string, number>; total: number };
}

export interface PipelineResult extends ThroughputResult {
  /** Messages the workers sent to a retry tier meanwhile (throttled, parked or failed): the slow tail. */
  retried: number;
}

export type Log = (line: string) => void;

/**
 * After a warm-up of `p.warmup` messages, sends `p.count` as fast as the ingress behind `client`
 * takes them and waits until the provider received every one (distinct ids).
 */
export async function closedThroughput(
  client: IngressClient,
  ledger: LedgerClient,
  s: Sizes,
  p: LoadShape,
  pids: Pids,
  log: Log,
  label: string,
): Promise<ThroughputResult> {
  const load = (count: number) =>
    closedLoop(client, { count, users: p.users, concurrency: p.concurrency, batchSize: p.batchSize, deadline: Date.now() + s.drainTimeoutMs });
  // Warm-up: JIT, connection pools, shard leases settled.
  const warm = await deliveredCount(ledger);
  log(`${label} warm-up: ${p.warmup} messages`);
  await load(p.warmup);
  await waitDelivered(ledger, warm + p.warmup, Date.now() + s.drainTimeoutMs, `${label} warm-up`);
  const base = await deliveredCount(ledger);
  log(`${label}: ${p.count} messages, ${p.users} users, ${p.concurrency} × ${p.batchSize === 1 ? 'single POST' : `batch of ${p.batchSize}`}`);
  const meter = new CpuMeter(pids);
  const acc = await load(p.count);
  await waitDelivered(ledger, base + p.count, Date.now() + s.drainTimeoutMs, label);
  const cpu = perMessage(meter.stop(), p.count);
  const last = await lastEntry(ledger);
  const seconds = (last.receivedAt - acc.firstSentAt) / 1000;
  return {
    shape: p,
    count: p.count,
    perSecond: p.count / seconds,
    acceptPerSecond: p.count / ((acc.lastAcceptedAt - acc.firstSentAt) / 1000),
    seconds,
    retried503: acc.retried503,
    cpu,
  };
}

export async function measurePipeline(
  fleet: Fleet,
  client: IngressClient,
  ledger: LedgerClient,
  s: Sizes,
  pids: Pids,
  log: Log,
  p: LoadShape = s.pipeline,
): Promise<PipelineResult> {
  const retriedBefore = await fleet.counter('postmaster_retried_total');
  const r = await closedThroughput(client, ledger, s, p, pids, log, 'pipeline');
  return { ...r, retried: (await fleet.counter('postmaster_retried_total')) - retriedBefore };
}

export interface LatencyResult {
  ratePerSecond: number;
  batchSize: number;
  /** Messages the workers sent to a retry tier meanwhile. */
  retried: number;
  count: number;
  p50: number;
  p99: number;
  max: number;
  /** Whether the broker flushed its quorum WAL meanwhile (broker-wal.ts); null: not watched. */
  wal: WalReport | null;
}

/** [accept, provider receivedAt] of each delivered id (epoch ms). */
export function spansOf(watch: LedgerWatch, ids: string[]): Array<[number, number]> {
  return ids.flatMap((id): Array<[number, number]> => (watch.receivedAt.has(id) ? [[ulidTime(id), watch.receivedAt.get(id)!]] : []));
}

/** accept (the envelope id's ULID time, set by the ingress) → provider receivedAt, sorted. */
export function latencies(spans: Array<[number, number]>): number[] {
  return spans.map(([accepted, received]) => received - accepted).sort((a, b) => a - b);
}

/**
 * When the dispatcher recorded each id `dispatched`, from its status record's history (ms; NaN
 * when the record or the entry is missing).
 */
export async function dispatchedAt(fleet: Fleet, ids: string[]): Promise<number[]> {
  const redis = new Redis(fleet.cfg.redisUrl, { maxRetriesPerRequest: 2 });
  try {
    const keys = keyspace(fleet.cfg.redisKeyPrefix, fleet.cfg.topologyPrefix);
    const histories = await Promise.all(ids.map((id) => redis.hget(keys('status', id), 'history')));
    return histories.map((h) => Number(/(?:^|,)dispatched@(\d+)/.exec(h ?? '')?.[1]));
  } finally {
    redis.disconnect();
  }
}

/**
 * PMBENCH_LOG_DIR=<dir>: every message's accept time, latency and the two legs of its status
 * record's history (accept → the dispatcher's `dispatched`, `dispatched` → the provider) also go to
 * <dir>/<name>.csv in accept order: to see where the slow ones lost their time, and whether they
 * came in bursts (a stall of some process) or spread evenly.
 */
export async function dumpLatencies(fleet: Fleet, watch: LedgerWatch, ids: string[], name: string): Promise<void> {
  const dir = process.env.PMBENCH_LOG_DIR;
  if (!dir) return;
  const got = ids.filter((id) => watch.receivedAt.has(id));
  const dispatched = await dispatchedAt(fleet, got);
  const rows = got
    .map((id, i) => {
      const accepted = ulidTime(id);
      const received = watch.receivedAt.get(id)!;
      return [accepted, received - accepted, dispatched[i] - accepted, received - dispatched[i], id] as const;
    })
    .sort((a, b) => a[0] - b[0]);
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, `${name}.csv`),
    'accepted_ms,latency_ms,to_dispatched_ms,dispatched_to_provider_ms,id\n' + rows.map((r) => r.join(',')).join('\n') + '\n',
  );
}

export function summarizeLatency(lat: number[]): { p50: number; p99: number; max: number } {
  return { p50: percentile(lat, 50), p99: percentile(lat, 99), max: lat[lat.length - 1] };
}

export async function measureLatency(
  fleet: Fleet,
  client: IngressClient,
  ledger: LedgerClient,
  s: Sizes,
  ratePerSecond: number,
  log: Log,
  shape: LoadShape = s.pipeline,
): Promise<LatencyResult> {
  const watch = await LedgerWatch.fromNow(ledger);
  const retriedBefore = await fleet.counter('postmaster_retried_total');
  const batchSize = shape.batchSize;
  log(
    `latency: open loop at ${ratePerSecond.toFixed(0)}/s for ${s.latency.durationMs / 1000} s, ${batchSize === 1 ? 'single POSTs' : `batches of ${batchSize}`}`,
  );
  const walWatch = await WalWatch.start();
  const acc = await openLoop(client, {
    ratePerSecond,
    batchSize,
    durationMs: s.latency.durationMs,
    users: s.latency.users,
    deadline: Date.now() + s.drainTimeoutMs,
  });
  watch.add(acc.ids);
  await watch.waitAll(Date.now() + s.drainTimeoutMs, 'latency run');
  const spans = spansOf(watch, acc.ids);
  const wal = walReport(walWatch?.stop() ?? null, spans);
  const lat = latencies(spans);
  await dumpLatencies(fleet, watch, acc.ids, batchSize === 1 ? 'latency-singles' : 'latency-batches');
  const retried = (await fleet.counter('postmaster_retried_total')) - retriedBefore;
  return { ratePerSecond, batchSize, retried, count: lat.length, ...summarizeLatency(lat), wal };
}
