/**
 * Urgent messages under a normal backlog: with the workers stopped, the ingress fills the ordered
 * dispatch lanes with `backlog` normal messages; then the workers start on it. Urgent messages
 * (`priority: "urgent"`) of their first seconds are measured apart (`startup`: what a restart onto
 * a backlog costs); then, while most of the backlog still waits, urgent messages arrive paced
 * (open loop). The figure is their accept → provider receivedAt.
 *
 * `dedicated`: the same with the stage split as docs/OPERATIONS.md suggests for an urgent SLO — the
 * dispatcher and sender consume only the ordered lanes (WORKER_LANES=ordered) and one more of each
 * only the urgent lanes (WORKER_LANES=urgent), so no backlog shares the urgent replicas' event loop.
 */
import os from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { deliveredCount, LedgerWatch, percentile, waitDelivered } from './delivery.js';
import { ulidTime } from './message.js';
import type { Fleet } from './fleet.js';
import type { LedgerClient } from './provider.js';
import { closedLoop, openLoop, type IngressClient } from './load.js';
import { walReport, WalWatch, type WalReport } from './broker-wal.js';
import { dispatchedAt, dumpLatencies, latencies, spansOf, summarizeLatency, type Log } from './pipeline.js';
import type { Sizes } from './sizes.js';

export interface UrgentResult {
  count: number;
  backlog: number;
  /** Normal messages waiting in the shard queues before the first urgent message was sent and after the last was delivered. */
  backlogAtStart: number;
  backlogAtEnd: number;
  p50: number;
  p99: number;
  max: number;
  /** Messages the workers sent to a retry tier from the urgent messages' first send to their last delivery. */
  retried: number;
  /**
   * Where the time went, from the status records' history: accept → the dispatcher's `dispatched`
   * (ingress publish, broker, dispatcher) and `dispatched` → provider receivedAt (the dispatcher's
   * publish, broker, sender, HTTP). p50 / p99 ms of each.
   */
  legs: { dispatch: [number, number]; send: [number, number] };
  /**
   * Seconds the shared replicas held back their ordered lanes for urgent messages in flight
   * (postmaster_urgent_hold_seconds_total, URGENT_HOLD_MS), per stage, over `windowMs`: from the
   * counters' read (PROBE_SETTLE_MS before the first urgent message was sent; no hold can begin
   * then) to the last one delivered. 0 with dedicated replicas.
   */
  held: { dispatch: number; send: number };
  windowMs: number;
  /**
   * The urgent messages of the workers' first seconds (STARTUP_MS after they are ready, 10 a
   * second), before the measured window: what a restart onto a full backlog costs them (JIT
   * warm-up, a full prefetch arriving, fresh connections). Not part of p50 / p99.
   */
  startup: { count: number; p50: number; max: number };
  /** Whether the broker flushed its quorum WAL during the window (broker-wal.ts); null: not watched. */
  wal: WalReport | null;
}

/** The two legs of each delivered id, from its status record's history (`dispatched@<ms>`). */
async function legsOf(fleet: Fleet, watch: LedgerWatch, ids: string[]): Promise<UrgentResult['legs']> {
  const at = await dispatchedAt(fleet, ids);
  const dispatch: number[] = [];
  const send: number[] = [];
  ids.forEach((id, i) => {
    const received = watch.receivedAt.get(id);
    if (!Number.isFinite(at[i]) || received === undefined) return;
    dispatch.push(at[i] - ulidTime(id));
    send.push(received - at[i]);
  });
  const p = (xs: number[]): [number, number] => {
    xs.sort((a, b) => a - b);
    return [percentile(xs, 50), percentile(xs, 99)];
  };
  return { dispatch: p(dispatch), send: p(send) };
}

/** Nice value of the ordered-lane replicas in the dedicated measurement. */
const BULK_NICE = 10;

/** Pause between the bench's reads of the fleet (queue depths, metrics) and the first urgent message. */
const PROBE_SETTLE_MS = Number(process.env.PMBENCH_PROBE_SETTLE_MS ?? 500);

/** How long after the workers are ready urgent messages are measured as the start-up set, and at what rate. */
const STARTUP_MS = 2000;
const STARTUP_PER_S = 10;

/** Part of the backlog's expected drain time over which the urgent messages are spread. */
const SPREAD_SHARE = 0.3;

export async function measureUrgent(
  fleet: Fleet,
  client: IngressClient,
  ledger: LedgerClient,
  s: Sizes,
  pipelinePerSecond: number,
  log: Log,
  opts: { dedicated?: boolean } = {},
): Promise<UrgentResult> {
  const u = s.urgent;
  for (const n of ['dispatcher', 'sender', 'dispatcher-urgent', 'sender-urgent'] as const) await fleet.stop(n);
  log(`urgent: filling a backlog of ${u.backlog} normal messages`);
  const base = await deliveredCount(ledger);
  const deadline = Date.now() + s.drainTimeoutMs;
  await closedLoop(client, { count: u.backlog, users: s.pipeline.users, concurrency: 2, batchSize: 500, deadline });
  const backlogDepth = async () => {
    const depths = await fleet.queueDepths();
    return fleet.shardQueues().reduce((n, q) => n + (depths[q] ?? 0), 0);
  };

  // Started before the workers: its first start looks up the WAL folder (rabbitmqctl, seconds on a
  // busy machine), which must not eat into the backlog. Only flushes overlapping the window count.
  const walWatch = await WalWatch.start();
  if (opts.dedicated) {
    await fleet.start('sender-urgent', { workerLanes: 'urgent' });
    await fleet.start('dispatcher-urgent', { workerLanes: 'urgent' });
  }
  const lanes = opts.dedicated ? { workerLanes: 'ordered' as const } : {};
  const bulk = [await fleet.start('sender', lanes), await fleet.start('dispatcher', lanes)];
  // The urgent replicas' own CPU: on a Kubernetes node, their pods' CPU requests (cgroup CPU
  // weight); on this one machine, the bulk replicas run at a lower CPU priority instead.
  if (opts.dedicated) for (const c of bulk) os.setPriority(c.pid, BULK_NICE);
  const spreadMs = Math.min(10_000, Math.max(500, (SPREAD_SHARE * u.backlog * 1000) / pipelinePerSecond));
  // The workers' first seconds on the backlog, with urgent messages of their own (reported apart):
  // the window below measures workers that have warmed up, as in a campaign that is under way.
  const startupMs = Math.min(STARTUP_MS, spreadMs);
  const startWatch = await LedgerWatch.fromNow(ledger);
  const early = await openLoop(client, { ratePerSecond: STARTUP_PER_S, durationMs: startupMs, users: u.users, priority: 'urgent', deadline });
  startWatch.add(early.ids);
  await startWatch.waitAll(deadline, 'urgent messages of the start-up');
  const earlyLat = latencies(spansOf(startWatch, early.ids));
  const startup = { count: earlyLat.length, ...summarizeLatency(earlyLat) };
  // Let the backlog flow, so the urgent messages meet a busy pipeline, not an idle one.
  await waitDelivered(ledger, base + Math.min(1000, Math.ceil(u.backlog / 10)), deadline, 'urgent: backlog start');
  const watch = await LedgerWatch.fromNow(ledger);
  const backlogAtStart = await backlogDepth();
  const retriedBefore = await fleet.counter('postmaster_retried_total');
  const heldBefore = await fleet.counterBy('postmaster_urgent_hold_seconds_total', ['stage']);
  const windowStart = Date.now();
  // The reads above are the bench's, not the load's (a channel and a passive declare per queue on
  // the broker, two /metrics scrapes of each worker): the first urgent message leaves after they
  // have passed through the fleet, not into them.
  await sleep(PROBE_SETTLE_MS);
  log(`urgent: ${u.count} urgent messages over ${(spreadMs / 1000).toFixed(1)} s, ${backlogAtStart} normal ones waiting`);
  const acc = await openLoop(client, {
    ratePerSecond: (u.count * 1000) / spreadMs,
    durationMs: spreadMs,
    users: u.users,
    priority: 'urgent',
    deadline,
  });
  watch.add(acc.ids);
  await watch.waitAll(deadline, 'urgent messages');
  const spans = spansOf(watch, acc.ids);
  const wal = walReport(walWatch?.stop() ?? null, spans);
  const backlogAtEnd = await backlogDepth();
  const lat = latencies(spans);
  const windowMs = Date.now() - windowStart;
  const retried = (await fleet.counter('postmaster_retried_total')) - retriedBefore;
  const heldAfter = await fleet.counterBy('postmaster_urgent_hold_seconds_total', ['stage']);
  const held = { dispatch: (heldAfter.dispatch ?? 0) - (heldBefore.dispatch ?? 0), send: (heldAfter.send ?? 0) - (heldBefore.send ?? 0) };
  const legs = await legsOf(fleet, watch, acc.ids);
  await dumpLatencies(fleet, watch, acc.ids, opts.dedicated ? 'urgent-dedicated' : 'urgent-shared');
  if (opts.dedicated) {
    // Back to the default deployment for what follows.
    for (const n of ['dispatcher-urgent', 'sender-urgent'] as const) await fleet.stop(n);
    await fleet.start('sender');
    await fleet.start('dispatcher');
  }
  return { count: lat.length, backlog: u.backlog, backlogAtStart, backlogAtEnd, retried, legs, held, windowMs, startup, wal, ...summarizeLatency(lat) };
}
