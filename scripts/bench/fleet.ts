/**
 * The pipeline under test, every part its own process: the ingress, one dispatcher and one sender,
 * configured like production (16 shards, default prefetch, NODE_ENV=production) except for the rate
 * limits the bench turns off, posting to the run's bare provider (http-server.ts). Each runs under
 * the memory limit of its container in the production overlay (../lib/memory-limit.ts), where the
 * machine lets the bench make memory cgroups.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { request } from 'undici';
import type { Config } from '../../shared/platform/config.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import type { BenchSpace } from './isolation.js';
import { freePort } from '../lib/ports.js';
import { productionMemoryLimits } from '../lib/memory-limit.js';
import { DIST, spawnService, type Child } from '../lib/processes.js';

/** `…-urgent`: a replica with WORKER_LANES=urgent (the urgent measurement's dedicated deployment). */
export type ServiceName = 'ingress' | 'dispatcher' | 'sender' | 'dispatcher-urgent' | 'sender-urgent';
const WORKERS: ServiceName[] = ['dispatcher', 'sender', 'dispatcher-urgent', 'sender-urgent'];

export interface FleetOptions {
  /** A directory turns on `node --cpu-prof` for the three services; profiles land under it. */
  profileDir?: string;
  /** With profileDir: sample allocations (alloc-sample.ts) instead of CPU time. */
  profileAlloc?: boolean;
}

export class Fleet {
  readonly procs = new Map<ServiceName, Child>();
  /** Where each running worker serves /metrics. */
  private readonly metricsPorts = new Map<ServiceName, number>();
  cfg!: Config;
  /** MiB, by service: infra/k8s/overlays/production's container limits. */
  readonly memoryLimits = productionMemoryLimits(path.dirname(DIST));

  constructor(
    private readonly space: BenchSpace,
    private readonly providerUrl: string,
    private readonly opts: FleetOptions = {},
  ) {}

  get ingressUrl(): string {
    return `http://127.0.0.1:${this.cfg.ingressPort}`;
  }

  private profileArgs(name: ServiceName): string[] {
    const dir = this.opts.profileDir;
    if (!dir) return [];
    if (!this.opts.profileAlloc) return ['--cpu-prof', `--cpu-prof-dir=${path.join(dir, name)}`];
    process.env.PMBENCH_ALLOC_DIR = dir; // read by the preload in the children, which inherit it
    return ['--import', fileURLToPath(new URL('./alloc-sample.js', import.meta.url))];
  }

  /** Fixes the configuration every service of the run shares. */
  async init(): Promise<void> {
    this.cfg = this.space.config({ ingressPort: await freePort(), providerBaseUrl: this.providerUrl });
  }

  /** Starts (or restarts) a service; `overrides` apply to this process only. */
  async start(name: ServiceName, overrides: Partial<Config> = {}): Promise<Child> {
    await this.stop(name);
    const metricsPort = await freePort();
    const cfg: Config = { ...this.cfg, metricsPort, replicaId: `bench-${name}-${metricsPort}`, ...overrides };
    const nodeArgs = this.profileArgs(name);
    const service = name === 'dispatcher-urgent' ? 'dispatcher' : name === 'sender-urgent' ? 'sender' : name;
    const child = await spawnService(service, cfg, { nodeArgs, memoryLimitMb: this.memoryLimits[service] });
    this.procs.set(name, child);
    this.metricsPorts.set(name, cfg.metricsPort);
    return child;
  }

  /** Graceful stop (SIGTERM: stop intake, finish and ack in-flight work), if running. */
  async stop(name: ServiceName): Promise<void> {
    const c = this.procs.get(name);
    if (!c) return;
    this.procs.delete(name);
    await c.stop(this.cfg.shutdownGraceMs + 10_000);
  }

  /**
   * Sum of a counter's samples (every label set) over the running services' /metrics, e.g.
   * `postmaster_retried_total`: how many messages the workers sent to a retry tier so far.
   */
  async counter(name: string, services: ServiceName[] = WORKERS): Promise<number> {
    return Object.values(await this.counterBy(name, [], services)).reduce((a, b) => a + b, 0);
  }

  /**
   * The same, summed per value of `labels` (joined by '/', e.g. `send/throttled` for
   * ['stage', 'class']); a label a sample lacks counts as '-'.
   */
  async counterBy(name: string, labels: string[], services: ServiceName[] = WORKERS): Promise<Record<string, number>> {
    const totals: Record<string, number> = {};
    for (const s of services) {
      const port = this.procs.has(s) ? this.metricsPorts.get(s) : undefined;
      if (port === undefined) continue;
      const res = await request(`http://127.0.0.1:${port}/metrics`, { headersTimeout: 10_000, bodyTimeout: 10_000 }).catch(() => null);
      const text = res ? await res.body.text() : '';
      for (const line of text.split('\n')) {
        if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
        const value = Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
        const key = labels.map((l) => new RegExp(`[{,]${l}="([^"]*)"`).exec(line)?.[1] ?? '-').join('/');
        totals[key] = (totals[key] ?? 0) + value;
      }
    }
    return totals;
  }

  children(names: ServiceName[]): Child[] {
    return names.flatMap((n) => (this.procs.has(n) ? [this.procs.get(n)!] : []));
  }

  /** In pipeline order. */
  async close(): Promise<void> {
    for (const n of ['ingress', ...WORKERS] as const) await this.stop(n).catch(() => {});
  }

  /**
   * Ready messages in every queue of the topology, through raw amqplib (exact, unlike the
   * management API), all queues at once on parallel throwaway channels, so that a message moving
   * between queues inside the broker is unlikely to fall between two reads.
   */
  async queueDepths(): Promise<Record<string, number>> {
    const conn = await amqplib.connect(this.cfg.amqpUrl);
    try {
      const names = await this.queueNames();
      const counts = await Promise.all(
        names.map(async (q) => {
          const ch = await conn.createChannel();
          const n = (await ch.checkQueue(q)).messageCount;
          await ch.close();
          return n;
        }),
      );
      return Object.fromEntries(names.map((q, i) => [q, counts[i]]));
    } finally {
      await conn.close();
    }
  }

  /**
   * Queue depths once their total holds still for `stableReads` reads in a row, `everyMs` apart.
   * With the services stopped, messages still move by themselves: out of the retry tiers (their TTL)
   * back into the lanes, and a message the broker is dead-lettering counts in neither queue for a
   * moment. Returns the last read and whether it settled within `timeoutMs`.
   */
  async settledDepths(timeoutMs = 60_000, stableReads = 3, everyMs = 500): Promise<{ depths: Record<string, number>; settled: boolean }> {
    const total = (d: Record<string, number>) => Object.values(d).reduce((a, b) => a + b, 0);
    const deadline = Date.now() + timeoutMs;
    let depths = await this.queueDepths();
    let same = 1;
    while (same < stableReads && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, everyMs));
      const next = await this.queueDepths();
      same = total(next) === total(depths) ? same + 1 : 1;
      depths = next;
    }
    return { depths, settled: same >= stableReads };
  }

  /** Empties every queue of the topology (between phases, with the workers stopped). */
  async purgeQueues(): Promise<void> {
    const conn = await amqplib.connect(this.cfg.amqpUrl);
    try {
      const ch = await conn.createChannel();
      for (const q of topologyFromConfig(this.cfg).queues) await ch.purgeQueue(q.name);
      await ch.close();
    } finally {
      await conn.close();
    }
  }

  /** Every queue of the topology. */
  async queueNames(): Promise<string[]> {
    return topologyFromConfig(this.cfg).queues.map((q) => q.name);
  }

  /** Shard queues of both stages: where the normal (ordered) backlog waits. */
  shardQueues(): string[] {
    const t = topologyFromConfig(this.cfg);
    const re = new RegExp(t.names.shardPattern());
    return t.queues.map((q) => q.name).filter((n) => re.test(n));
  }

  retryQueues(): string[] {
    const t = topologyFromConfig(this.cfg);
    return t.options.retryTiersMs.map((ms) => t.names.retry(ms));
  }

  dlqName(): string {
    return topologyFromConfig(this.cfg).names.dlq;
  }
}
