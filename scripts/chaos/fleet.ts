/**
 * The fleet of one chaos scenario on the private infrastructure: its own vhost and Redis key
 * prefix, the provider simulator in this process (the oracle), and ingress, dispatchers, senders
 * and the dlq-replayer as child processes that a scenario may SIGKILL and restart.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig, type Config } from '../../shared/platform/config.js';
import { Management } from '../../shared/amqp/management.js';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { freePort } from '../lib/ports.js';
import { sleep } from '../lib/wait.js';
import { spawnService, type ServiceName, type ServiceProcess } from '../lib/processes.js';
import type { RabbitNode } from '../lib/private-rabbit.js';
import type { PrivateRedis } from '../lib/private-redis.js';
import type { PrivateSentinelSet } from '../lib/private-sentinel.js';

export interface FleetShape {
  dispatchers: number;
  senders: number;
  replayer: boolean;
  /** Config overrides on top of the chaos defaults. */
  overrides?: Partial<Config>;
}

export const DEFAULT_SHAPE: FleetShape = { dispatchers: 2, senders: 2, replayer: true };

export interface Infra {
  /** One node, or the nodes of a cluster (AMQP_URL lists them all, first node first). */
  nodes: RabbitNode[];
  redis: PrivateRedis;
  /** Given (scenarios with `sentinel: true`): the fleet's Redis is this Sentinel set, with REDIS_WAIT_REPLICAS=1. */
  sentinel?: PrivateSentinelSet;
}

export interface Crash {
  replicaId: string;
  at: number;
  how: string;
}

/**
 * Restart back-off after a crash, like Kubernetes' CrashLoopBackOff (10 s doubling to 5 min there;
 * 1 s doubling to 10 s here, to fit a scenario).
 */
const backoffMs = (attempt: number) => Math.min(10_000, 1000 * 2 ** attempt);

export class ChaosFleet {
  readonly procs: ServiceProcess[] = [];
  /** Processes that exited without being told to (each was restarted, as a Deployment would). */
  readonly crashes: Crash[] = [];
  private readonly retired: ServiceProcess[] = [];
  private restarts = 0;
  private closing: Promise<void> | null = null;

  private constructor(
    readonly name: string,
    readonly infra: Infra,
    readonly vhost: string,
    readonly cfg: Config,
    readonly sim: Simulator,
  ) {}

  static async start(infra: Infra, name: string, shape: FleetShape = DEFAULT_SHAPE): Promise<ChaosFleet> {
    const id = `${name}-${randomBytes(2).toString('hex')}`;
    const vhost = `chaos-${id}`;
    const mgmtNode = infra.nodes[infra.nodes.length - 1];
    await new Management(mgmtNode.mgmtUrl).putVhost(vhost);
    const pre = loadConfig({}, {});
    const ingressPort = await freePort();
    // Like Meta, the simulator reports what it accepted through signed status webhooks to the
    // ingress (the sender resolves an ambiguous redelivery by them).
    const sim = await startSimulator({
      accessToken: pre.whatsappAccessToken,
      phoneNumberId: pre.whatsappPhoneNumberId,
      seed: 1,
      keepBodies: true,
      webhook: { url: `http://127.0.0.1:${ingressPort}/webhooks/whatsapp`, appSecret: pre.whatsappAppSecret, statuses: ['sent', 'delivered'] },
    });
    const cfg = loadConfig(
      {},
      {
        amqpUrl: infra.nodes.map((n) => n.amqpUrl(vhost)).join(','),
        // One URL only: in a cluster, the last node's (the first one leads the queues and is the one killed).
        managementUrl: mgmtNode.mgmtUrl,
        redisUrl: infra.redis.url,
        ...(infra.sentinel
          ? { redisUrl: infra.sentinel.redisUrl, redisSentinels: infra.sentinel.sentinels, redisSentinelName: infra.sentinel.name, redisWaitReplicas: 1 }
          : {}),
        redisKeyPrefix: `chaos-${id}`,
        providerBaseUrl: sim.url,
        ingressPort,
        ingressHost: '127.0.0.1',
        metricsPort: 0,
        logLevel: 'warn',
        shards: 8,
        // The load sends a user a message every few seconds: the pair rate limit would only add waits.
        whatsappPairIntervalMs: 0,
        whatsappPairBurst: 0,
        shutdownGraceMs: 5000,
        ...shape.overrides,
      },
    );
    const fleet = new ChaosFleet(name, infra, vhost, cfg, sim);
    try {
      // The ingress first: it declares the topology (the others then find it in place).
      fleet.adopt(await spawnService('ingress', cfg, { replicaId: 'ingress-0' }));
      const rest: Array<[ServiceName, string]> = [
        ...Array.from({ length: shape.dispatchers }, (_, i): [ServiceName, string] => ['dispatcher', `dispatcher-${i}`]),
        ...Array.from({ length: shape.senders }, (_, i): [ServiceName, string] => ['sender', `sender-${i}`]),
        ...(shape.replayer ? [['dlq-replayer', 'dlq-replayer-0'] as [ServiceName, string]] : []),
      ];
      const started = await Promise.allSettled(rest.map(([svc, replica]) => spawnService(svc, cfg, { replicaId: replica })));
      for (const s of started) if (s.status === 'fulfilled') fleet.adopt(s.value);
      const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
      if (failed) throw failed.reason;
    } catch (err) {
      await fleet.close();
      throw err;
    }
    return fleet;
  }

  private adopt(p: ServiceProcess, index = this.procs.length): void {
    this.procs[index] = p;
    void p.exited.then(() => {
      if (this.closing || p.intended) return;
      const lines = p.output().trim().split('\n');
      const last = lines.filter((l) => /^\w*Error\b/.test(l)).slice(-1)[0] ?? lines.slice(-1)[0] ?? '';
      this.crashes.push({ replicaId: p.replicaId, at: Date.now(), how: `exit ${p.child.exitCode ?? p.child.signalCode}: ${last.slice(0, 200)}` });
      this.retired.push(p);
      void this.restartCrashed(index, p);
    });
  }

  private async restartCrashed(index: number, dead: ServiceProcess): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      await sleep(backoffMs(attempt));
      if (this.closing) return;
      const replicaId = `${dead.replicaId.replace(/~r\d+$/, '')}~r${++this.restarts}`;
      try {
        const p = await spawnService(dead.service, this.cfg, { replicaId });
        if (this.closing) return void (await p.stop());
        this.adopt(p, index);
        return;
      } catch (err) {
        this.crashes.push({ replicaId, at: Date.now(), how: `restart failed: ${(err as Error).message.split('\n')[0].slice(0, 200)}` });
      }
    }
  }

  /** "dispatcher-0 ×2 (exit 1: …)" for the report. */
  describeCrashes(): string[] {
    const by = new Map<string, Crash[]>();
    for (const c of this.crashes) {
      const k = c.replicaId.replace(/~r\d+$/, '');
      by.set(k, [...(by.get(k) ?? []), c]);
    }
    return [...by].map(([k, cs]) => `${k} crashed ×${cs.length} (${cs[0].how})`);
  }

  get ingressUrl(): string {
    return `http://127.0.0.1:${this.cfg.ingressPort}`;
  }

  /** AMQP URL of one node (for the audit's raw amqplib reads). */
  amqpUrlOf(node: RabbitNode): string {
    return node.amqpUrl(this.vhost);
  }

  find(service: ServiceName): number {
    const i = this.procs.findIndex((p) => p.service === service);
    if (i < 0) throw new Error(`no ${service} in this fleet`);
    return i;
  }

  /**
   * SIGKILLs process `index` and starts a replacement at once with a new replica id (as a
   * Deployment would). Resolves when the replacement is ready.
   */
  async killAndRestart(index: number): Promise<{ killedAt: number; readyAt: number; replicaId: string }> {
    const old = this.procs[index];
    await old.kill();
    const killedAt = Date.now();
    this.retired.push(old);
    const replicaId = `${old.replicaId.replace(/~r\d+$/, '')}~r${++this.restarts}`;
    this.adopt(await spawnService(old.service, this.cfg, { replicaId }), index);
    return { killedAt, readyAt: Date.now(), replicaId };
  }

  /** Freezes process `index` (SIGSTOP) for `ms`, then lets it run again (SIGCONT). */
  async freeze(index: number, ms: number): Promise<{ frozenAt: number; resumedAt: number; replicaId: string }> {
    const p = this.procs[index];
    p.pause();
    const frozenAt = Date.now();
    try {
      await sleep(ms);
    } finally {
      p.resume();
    }
    return { frozenAt, resumedAt: Date.now(), replicaId: p.replicaId };
  }

  /** Keeps every process's last output lines (warn and above) under `dir`. */
  async saveLogs(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true });
    for (const p of [...this.retired, ...this.procs]) {
      const tag = !this.retired.includes(p) ? '' : p.intended ? '.killed' : '.crashed';
      await writeFile(path.join(dir, `${p.replicaId}${tag}.log`), p.output());
    }
  }

  /** Idempotent: SIGTERM every process (SIGKILL after the grace), simulator, vhost, Redis keys. */
  close(): Promise<void> {
    return (this.closing ??= (async () => {
      await Promise.all(this.procs.map((p) => p.stop(15_000).catch(() => undefined)));
      await this.sim.close().catch(() => undefined);
      for (const node of [...this.infra.nodes].reverse()) {
        if (!(await node.alive())) continue;
        const ok = await new Management(node.mgmtUrl).deleteVhost(this.vhost).then(
          () => true,
          () => false,
        );
        if (ok) break;
      }
      await this.infra.redis.cli(['flushall']).catch(() => undefined);
      const sentinel = this.infra.sentinel;
      if (sentinel)
        await sentinel
          .primary()
          .then((p) => sentinel.cli(p.port, ['flushall']))
          .catch(() => undefined);
    })());
  }
}
