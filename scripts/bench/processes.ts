/**
 * Services (and the bench's bare HTTP server) as child processes, so each gets its own share of the
 * cores as in production: `node dist/services/<name>/main.js` with the environment of a config.
 * Every child is registered, so a failing run can stop them all before it cleans up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envOf, type Config } from '../../shared/config.js';

/** dist/ (this file is dist/scripts/bench/processes.js once built). */
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

export async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export interface Child {
  name: string;
  child: ChildProcess;
  pid: number;
  output(): string;
  /** Resident set size now, in MB (VmRSS of /proc/<pid>/status); 0 once the process is gone. */
  rssMb(): number;
  /** SIGTERM, then SIGKILL after graceMs; resolves when the process has exited. Idempotent. */
  stop(graceMs?: number): Promise<void>;
}

const running = new Set<Child>();

export interface SpawnOptions {
  name: string;
  script: string;
  env: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Polled until it answers 200. */
  readyUrl: string;
  readyTimeoutMs?: number;
}

export async function spawnChild(o: SpawnOptions): Promise<Child> {
  // PMBENCH_NODE_ARGS="--trace-gc …": node flags for every child (those NODE_OPTIONS refuses).
  const extra = (process.env.PMBENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  const child = spawn(process.execPath, [...extra, ...(o.nodeArgs ?? []), '--enable-source-maps', o.script], {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  // PMBENCH_LOG_DIR=<dir>: each child's whole output also goes to <dir>/<name>.log (appended).
  const logDir = process.env.PMBENCH_LOG_DIR;
  const file = logDir ? (mkdirSync(logDir, { recursive: true }), createWriteStream(path.join(logDir, `${o.name}.log`), { flags: 'a' })) : null;
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
    file?.write(b);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (file) void exited.then(() => file.end());
  let stopping: Promise<void> | null = null;
  const c: Child = {
    name: o.name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    rssMb: () => readRssMb(child.pid ?? -1),
    stop: (graceMs = 30_000) =>
      (stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        running.delete(c);
      })()),
  };
  running.add(c);
  const deadline = Date.now() + (o.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${o.name} exited during start-up: ${out.slice(-2000)}`);
    const r = await fetch(o.readyUrl).catch(() => null);
    await r?.body?.cancel();
    if (r?.status === 200) return c;
    if (Date.now() > deadline) {
      await c.stop(1000);
      throw new Error(`${o.name} not ready within ${o.readyTimeoutMs ?? 60_000} ms: ${out.slice(-2000)}`);
    }
    await sleep(100);
  }
}

/** A Postmaster service with the environment of `cfg`; ready when its /readyz answers 200. */
export async function spawnService(service: 'ingress' | 'dispatcher' | 'sender', cfg: Config, nodeArgs: string[] = []): Promise<Child> {
  const port = service === 'ingress' ? cfg.ingressPort : cfg.metricsPort;
  return spawnChild({
    name: service,
    script: path.join(DIST, 'services', service, 'main.js'),
    env: envOf(cfg),
    nodeArgs,
    readyUrl: `http://127.0.0.1:${port}/readyz`,
  });
}

/** Every child still running (a failed run logs their output). */
export function runningChildren(): Child[] {
  return [...running];
}

/** Stops every child still running (a failed run's clean-up). */
export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].map((c) => c.stop(graceMs)));
}

export function readRssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/** Samples the RSS of some processes until stopped; keeps each one's maximum. */
export class RssSampler {
  readonly maxMb = new Map<string, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly children: Child[], everyMs = 250) {
    this.sample();
    this.timer = setInterval(() => this.sample(), everyMs);
  }

  private sample(): void {
    for (const c of this.children) this.maxMb.set(c.name, Math.max(this.maxMb.get(c.name) ?? 0, c.rssMb()));
  }

  stop(): Map<string, number> {
    clearInterval(this.timer);
    this.sample();
    return this.maxMb;
  }
}
