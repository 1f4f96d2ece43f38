/**
 * The bare chain: the limit's three legs run the way the fleet has to run them — as separate
 * processes on the lanes' topology — with nothing else. The bench process publishes (the ingress's
 * publish, with the pipeline's load in flight) to a dispatch lane's consistent-hash exchange; a
 * relay process (chain-worker.ts) moves each message from the dispatch shards to the send lane; a
 * forward process posts its Cloud API request to the bare HTTP server (http-server.ts) and acks.
 * No HTTP ingress, parsing, validation, Redis, dedup, ordering, rate limiting, metrics or logging.
 *
 * `limit_per_s` prices each leg alone and saturated; this composes them on the shared cores at the
 * rate they reach together, so pipeline / bare chain is what the pipeline's own logic costs on top
 * of the legs — the part of the gap that cheaper service code could close.
 */
import path from 'node:path';
import amqplib from 'amqplib';
import { batchFrameWrites } from '../../shared/broker.js';
import type { Config } from '../../shared/config.js';
import { topologyFromConfig } from '../../shared/runtime.js';
import { assertTopology } from '../../shared/topology/assert.js';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { envelopeBytes, users } from './message.js';
import { DIST, freePort, sleep, spawnChild, type Child } from './processes.js';
import { summarizeLatency } from './pipeline.js';
import { publishPaced, publishWindowed, type HopResult } from './raw-hop.js';
import { lanePublisher, removeTopology } from './topology-hop.js';

export interface BareChainOptions {
  amqpUrl: string;
  vhost: string;
  managementUrl: string;
  /** The fleet's configuration: shards, prefetch, retry tiers, delivery limit. */
  cfg: Config;
  warmup: number;
  count: number;
  users: number;
  /** Publishes unconfirmed at a time: the pipeline's requests in flight × their batch size. */
  window: number;
  timeoutMs: number;
  /** The broker's pid (its CPU is counted). */
  pids?: Pids;
  /**
   * Then the latency at `rate` messages/s, `batch` at a time on schedule (the pipeline's latency
   * load), for `durationMs`: publish → the server's answer, per message.
   */
  latency?: { rate: number; batch: number; durationMs: number };
}

export interface BareChainResult extends HopResult {
  /** The latency phase, when asked for: its load and publish → answer percentiles (ms). */
  latency?: { rate: number; batch: number; count: number; p50: number; p99: number; max: number };
}

/** A prefix of its own: the fleet's topology in the same vhost is left alone. */
const PREFIX = 'bench-bare-chain';

export async function bareChain(o: BareChainOptions): Promise<BareChainResult> {
  const topology = topologyFromConfig({ ...o.cfg, topologyPrefix: PREFIX });
  // The publisher connects as the ingress does (noDelay, one socket write per multiplexer pass).
  const conn = await amqplib.connect(o.amqpUrl, { noDelay: true });
  batchFrameWrites(conn);
  const children: Child[] = [];
  try {
    await assertTopology(conn, topology, { mode: 'assert', managementUrl: o.managementUrl, vhost: o.vhost });
    const serverPort = await freePort();
    children.push(
      await spawnChild({ name: 'bare-http', script: path.join(DIST, 'scripts', 'bench', 'http-server.js'), env: { PORT: String(serverPort) }, readyUrl: `http://127.0.0.1:${serverPort}/` }),
    );
    const worker = async (role: 'relay' | 'forward') => {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}/`;
      const child = await spawnChild({
        name: `chain-${role}`,
        script: path.join(DIST, 'scripts', 'bench', 'chain-worker.js'),
        env: { ROLE: role, PORT: String(port), AMQP_URL: o.amqpUrl, PREFIX, SHARDS: String(o.cfg.shards), PREFETCH: String(o.cfg.shardPrefetch), BASE_URL: `http://127.0.0.1:${serverPort}` },
        readyUrl: url,
      });
      children.push(child);
      return {
        child,
        done: async () => ((await (await fetch(url)).json()) as { done: number }).done,
        latencies: async (from: number) => (await (await fetch(`${url}latencies?from=${from}`)).json()) as number[],
      };
    };
    const relay = await worker('relay');
    const forward = await worker('forward');

    const pub = await conn.createConfirmChannel();
    const exchange = topology.names.laneExchange('dispatch');
    const publish = lanePublisher(pub, exchange, users(o.users), envelopeBytes(), 'c');
    /** Waits until the forwarder has handled `n` messages in all (polled every 50 ms); fails at once if a worker died. */
    const forwarded = async (n: number) => {
      const deadline = Date.now() + o.timeoutMs;
      for (let got = 0; (got = await forward.done()) < n; await sleep(50)) {
        const dead = [relay, forward].find((w) => w.child.child.exitCode !== null);
        if (dead) throw new Error(`bare chain: ${dead.child.name} exited: ${dead.child.output().slice(-1000)}`);
        if (Date.now() > deadline) throw new Error(`bare chain: ${got} of ${n} forwarded after ${o.timeoutMs} ms`);
      }
    };

    await publishWindowed(o.warmup, o.window, 'bare chain warm-up', publish);
    await forwarded(o.warmup);
    const meter = new CpuMeter({ ...(o.pids ?? {}), relay: relay.child.pid, forward: forward.child.pid, server: children[0].pid }, 'publisher');
    const started = process.hrtime.bigint();
    await publishWindowed(o.count, o.window, 'bare chain', (i, done) => publish(o.warmup + i, done));
    await forwarded(o.warmup + o.count);
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = perMessage(meter.stop(), o.count);
    const handled = await forward.done();
    let latency: BareChainResult['latency'];
    if (o.latency) {
      const { rate, batch, durationMs } = o.latency;
      const n = Math.max(batch, Math.round((rate * durationMs) / 1000));
      await publishPaced(n, rate, batch, 'bare chain latency', (i, done) => publish(o.warmup + o.count + i, done));
      await forwarded(o.warmup + o.count + n);
      const lat = (await forward.latencies(o.warmup + o.count)).sort((a, b) => a - b);
      latency = { rate, batch, count: lat.length, ...summarizeLatency(lat) };
    }
    await pub.close();
    await Promise.all(children.splice(0).map((c) => c.stop(5000)));
    // Its queues go now, so that the later measurements do not share the broker with them.
    const admin = await conn.createChannel();
    await removeTopology(admin, topology);
    await admin.close();
    return { count: o.count, seconds, perSecond: o.count / seconds, cpu, queues: 2 * o.cfg.shards, handled, latency };
  } finally {
    await Promise.all(children.map((c) => c.stop(5000)));
    await conn.close().catch(() => {});
  }
}
