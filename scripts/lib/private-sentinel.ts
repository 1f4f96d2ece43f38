/**
 * A private Redis Sentinel set (tests, chaos runs, `npm run cluster -- redis`): three redis-server
 * (one primary, two `replicaof` it) and three `redis-server --sentinel` watching them with quorum 2,
 * each on its own port, files under one folder, no persistence. Short down-after-milliseconds and
 * failover-timeout, so a SIGKILLed primary is replaced within a few seconds. The machine's Redis is
 * never touched.
 */
import { readFileSync, rmSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { freePorts, portOpen } from './ports.js';
import { run } from './tools.js';
import { waitFor } from './wait.js';

export const SENTINEL_MASTER_NAME = 'mymaster';
/** How long the Sentinels wait before calling an unanswering primary down. */
const DOWN_AFTER_MS = 1000;
const FAILOVER_TIMEOUT_MS = 4000;

export interface Address {
  host: string;
  port: number;
}

export class PrivateSentinelSet {
  readonly name = SENTINEL_MASTER_NAME;
  private exitHook: (() => void) | null = null;

  private constructor(
    readonly dir: string,
    /** The three servers' ports; the first starts as the primary. */
    readonly redisPorts: number[],
    readonly sentinelPorts: number[],
  ) {}

  /** On `ports` (3 servers, then 3 Sentinels) or on free ports; nothing runs before start(). */
  static async create(base: string, ports?: { redis: number[]; sentinels: number[] }): Promise<PrivateSentinelSet> {
    const free = ports ? null : await freePorts(6);
    const redis = ports?.redis ?? free!.slice(0, 3);
    const sentinels = ports?.sentinels ?? free!.slice(3);
    return new PrivateSentinelSet(path.join(base, `sentinel-${redis[0]}`), redis, sentinels);
  }

  /** REDIS_SENTINELS of a fleet on this set. */
  get sentinels(): string {
    return this.sentinelPorts.map((p) => `127.0.0.1:${p}`).join(',');
  }

  /** REDIS_URL beside REDIS_SENTINELS: only its credentials and db count (none here). */
  get redisUrl(): string {
    return `redis://127.0.0.1:${this.redisPorts[0]}`;
  }

  private folder(port: number): string {
    return path.join(this.dir, String(port));
  }

  private pidFile(port: number): string {
    return path.join(this.folder(port), 'pid');
  }

  /** Starts every server (none given) or restarts the killed server `port` as a replica of the current primary. */
  async start(port?: number): Promise<void> {
    if (port !== undefined) {
      await this.startServer(port, await this.primary());
      await this.waitLinked(port);
      return;
    }
    await mkdir(this.dir, { recursive: true });
    const [first, ...rest] = this.redisPorts;
    await this.startServer(first, null);
    await Promise.all(rest.map((p) => this.startServer(p, { host: '127.0.0.1', port: first })));
    await Promise.all(rest.map((p) => this.waitLinked(p)));
    await Promise.all(this.sentinelPorts.map((p) => this.startSentinel(p, first)));
    // Ready once every Sentinel knows both replicas and the two other Sentinels.
    await waitFor(
      async () => {
        for (const p of this.sentinelPorts) {
          const info = await this.cli(p, ['sentinel', 'master', this.name]);
          if (!/\nnum-slaves\n2\n/.test(info) || !/\nnum-other-sentinels\n2\n/.test(info)) return false;
        }
        return true;
      },
      { timeoutMs: 30_000, intervalMs: 200, what: 'the Sentinels to find the replicas and each other' },
    );
  }

  private async startServer(port: number, primary: Address | null): Promise<void> {
    await mkdir(this.folder(port), { recursive: true });
    // prettier-ignore
    await run('redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no', '--repl-diskless-sync-delay', '0',
      '--dir', this.folder(port), '--pidfile', this.pidFile(port), '--logfile', path.join(this.folder(port), 'redis.log'),
      ...(primary ? ['--replicaof', primary.host, String(primary.port)] : []),
    ]);
    await waitFor(async () => (await this.cli(port, ['ping'])).trim() === 'PONG', { timeoutMs: 15_000, intervalMs: 100, what: `Redis on port ${port}` });
  }

  private waitLinked(port: number): Promise<boolean> {
    return waitFor(async () => /master_link_status:up/.test(await this.cli(port, ['info', 'replication'])), {
      timeoutMs: 15_000,
      intervalMs: 100,
      what: `replica :${port} to sync`,
    });
  }

  private async startSentinel(port: number, primaryPort: number): Promise<void> {
    const dir = this.folder(port);
    await mkdir(dir, { recursive: true });
    const conf = path.join(dir, 'sentinel.conf');
    // Sentinel rewrites its file (known replicas, epochs), so each has its own.
    await writeFile(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize yes',
        `pidfile ${this.pidFile(port)}`,
        `logfile ${path.join(dir, 'sentinel.log')}`,
        `dir ${dir}`,
        `sentinel monitor ${this.name} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${this.name} ${DOWN_AFTER_MS}`,
        `sentinel failover-timeout ${this.name} ${FAILOVER_TIMEOUT_MS}`,
        `sentinel parallel-syncs ${this.name} 1`,
        '',
      ].join('\n'),
    );
    await run('redis-server', [conf, '--sentinel']);
    await waitFor(async () => (await this.cli(port, ['ping'])).trim() === 'PONG', { timeoutMs: 15_000, intervalMs: 100, what: `Sentinel on port ${port}` });
  }

  cli(port: number, args: string[]): Promise<string> {
    return run('redis-cli', ['-p', String(port), ...args], { timeoutMs: 10_000 }).then((r) => r.stdout);
  }

  /** The primary as the first Sentinel that answers names it (`SENTINEL get-master-addr-by-name`). */
  async primary(): Promise<Address> {
    let last: unknown;
    for (const p of this.sentinelPorts) {
      try {
        const [host, port] = (await this.cli(p, ['sentinel', 'get-master-addr-by-name', this.name])).trim().split('\n');
        if (host && Number(port) > 0) return { host, port: Number(port) };
      } catch (err) {
        last = err;
      }
    }
    throw new Error(`no Sentinel names a primary for ${this.name}${last ? `: ${(last as Error).message}` : ''}`);
  }

  /**
   * Waits until the Sentinels name a primary other than `oldPort` and that server says it is one
   * (`ROLE`); resolves with it.
   */
  async newPrimary(oldPort: number, timeoutMs = 30_000): Promise<Address> {
    return waitFor(
      async () => {
        const now = await this.primary();
        if (now.port === oldPort) return null;
        return (await this.cli(now.port, ['role'])).startsWith('master') ? now : null;
      },
      { timeoutMs, intervalMs: 50, what: `the Sentinels to promote a replica in place of :${oldPort}` },
    );
  }

  /** SIGKILL of the server (or Sentinel) on `port`; resolves once the port is closed. */
  async kill9(port: number): Promise<void> {
    const pid = Number((await readFile(this.pidFile(port), 'utf8')).trim());
    if (!(pid > 0)) throw new Error(`no pid in ${this.pidFile(port)}`);
    process.kill(pid, 'SIGKILL');
    await waitFor(async () => !(await portOpen(port)), { timeoutMs: 10_000, intervalMs: 50, what: `:${port} to die` });
  }

  /** Every server and Sentinel running, by port. */
  async alive(): Promise<Record<number, boolean>> {
    const ports = [...this.redisPorts, ...this.sentinelPorts];
    const open = await Promise.all(ports.map((p) => portOpen(p)));
    return Object.fromEntries(ports.map((p, i) => [p, open[i]]));
  }

  /** Kills what still runs when this process exits (tests, chaos; not the CLI, whose set outlives it). */
  stopOnExit(): this {
    if (!this.exitHook) {
      this.exitHook = () => this.killAllSync();
      process.once('exit', this.exitHook);
    }
    return this;
  }

  /** Synchronous: it runs in an 'exit' handler, where nothing asynchronous completes. */
  private killAllSync(): void {
    for (const port of [...this.sentinelPorts, ...this.redisPorts]) {
      try {
        const pid = Number(readFileSync(this.pidFile(port), 'utf8').trim());
        if (pid > 0) process.kill(pid, 'SIGKILL');
      } catch {
        // not running
      }
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Stops every Sentinel and server and removes the folder. Idempotent. */
  async stop(): Promise<void> {
    if (this.exitHook) process.removeListener('exit', this.exitHook);
    this.exitHook = null;
    await Promise.all(
      [...this.sentinelPorts, ...this.redisPorts].map(async (port) => {
        const pid = Number((await readFile(this.pidFile(port), 'utf8').catch(() => '')).trim());
        if (pid > 0 && (await portOpen(port))) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
          await waitFor(async () => !(await portOpen(port)), { timeoutMs: 10_000, intervalMs: 50, what: `:${port} to stop` });
        }
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}
