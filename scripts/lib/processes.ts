/**
 * Child processes for the bench, the chaos scenarios and the tests' SIGKILL cases: a Postmaster
 * service (`node dist/services/<name>/main.js` with the environment of a configuration) or any
 * script, ready once an HTTP URL answers 200. Every child is registered until it stops, so a
 * failing run can log and stop them all before it cleans up.
 *
 * Two variables tune every child: PMBENCH_NODE_ARGS="--trace-gc …" adds node flags (those
 * NODE_OPTIONS refuses), and PMBENCH_LOG_DIR=<dir> appends each child's whole output to
 * <dir>/<name>.log.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync } from 'node:fs';
import { cp, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envOf, type Config } from '../../shared/platform/config.js';
import { memoryCgroups, type MemoryCgroups } from './memory-limit.js';
import { freePort } from './ports.js';
import { sleep } from './wait.js';

/** dist/ (this file is dist/scripts/lib/processes.js once built). */
export const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let servicesRoot = DIST;

export interface Child {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The last 20 kB of its stdout and stderr. */
  output(): string;
  exited: Promise<void>;
  /** The memory limit it runs under (MiB), or null: none asked for, or none could be made (`memoryLimitsUnavailable()`). */
  readonly memoryLimitMb: number | null;
  /** Set once stop() or kill() was called: an exit without it is a crash. */
  readonly intended: boolean;
  /** Resident set size now, in MB (VmRSS of /proc/<pid>/status); 0 once the process is gone. */
  rssMb(): number;
  /** SIGTERM (after a SIGCONT, should it be paused), SIGKILL after `graceMs`; resolves once it exited. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: frozen with its connections open (a long GC pause, a CPU-throttled container). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export interface SpawnOptions {
  name: string;
  script: string;
  env: Record<string, string>;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Polled until it answers 200. */
  readyUrl: string;
  readyTimeoutMs?: number;
  /** Run it in a memory cgroup with this limit (MiB), as its container would be (memory-limit.ts). */
  memoryLimitMb?: number;
}

let cgroups: MemoryCgroups | { unavailable: string } | undefined;

/** Why children asked to run under a memory limit run without one, or null if they get it. */
export function memoryLimitsUnavailable(): string | null {
  cgroups ??= memoryCgroups();
  return 'unavailable' in cgroups ? cgroups.unavailable : null;
}

const running = new Set<Child>();

/** Starts `node <script>` and resolves once `readyUrl` answers 200; kills it if it never does. */
export async function spawnChild(o: SpawnOptions): Promise<Child> {
  const extra = (process.env.PMBENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);
  let cmd = process.execPath;
  let args = [...extra, ...(o.nodeArgs ?? []), '--enable-source-maps', o.script];
  let limited: { remove(): void } | null = null;
  if (o.memoryLimitMb && memoryLimitsUnavailable() === null) {
    const w = (cgroups as MemoryCgroups).wrap(o.name, o.memoryLimitMb, cmd, args);
    ({ cmd, args } = w);
    limited = w;
  }
  const child = spawn(cmd, args, {
    env: { ...process.env, ...o.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const logDir = process.env.PMBENCH_LOG_DIR;
  const file = logDir ? (mkdirSync(logDir, { recursive: true }), createWriteStream(path.join(logDir, `${o.name}.log`), { flags: 'a' })) : null;
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
    file?.write(b);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  void exited.then(() => {
    limited?.remove();
    file?.end();
    running.delete(c);
  });
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = async (sig: NodeJS.Signals, graceMs: number) => {
    if (!gone()) child.kill(sig);
    const timer = setTimeout(() => !gone() && child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  let intended = false;
  const c: Child = {
    name: o.name,
    child,
    pid: child.pid ?? -1,
    output: () => out,
    exited,
    memoryLimitMb: limited ? o.memoryLimitMb! : null,
    get intended() {
      return intended;
    },
    rssMb: () => readRssMb(child.pid ?? -1),
    stop: (graceMs = 15_000) => {
      intended = true;
      if (!gone()) child.kill('SIGCONT'); // a frozen process handles SIGTERM only once it runs
      return signal('SIGTERM', graceMs);
    },
    kill: () => {
      intended = true;
      return signal('SIGKILL', 15_000);
    },
    pause: () => void (gone() || child.kill('SIGSTOP')),
    resume: () => void (gone() || child.kill('SIGCONT')),
  };
  running.add(c);
  const timeoutMs = o.readyTimeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (gone()) throw new Error(`${o.name} exited during start-up: ${out.slice(-2000)}`);
    const r = await fetch(o.readyUrl).catch(() => null);
    await r?.body?.cancel();
    if (r?.status === 200) return c;
    if (Date.now() > deadline) {
      await c.kill();
      throw new Error(`${o.name} not ready within ${timeoutMs} ms: ${out.slice(-2000)}`);
    }
    await sleep(100);
  }
}

export type ServiceName = 'ingress' | 'dispatcher' | 'sender' | 'dlq-replayer';

export interface ServiceProcess extends Child {
  service: ServiceName;
  replicaId: string;
  /** Where it serves /metrics (and, but for the ingress, /readyz). */
  metricsPort: number;
}

export interface ServiceOptions {
  /** Default: the configuration's. */
  replicaId?: string;
  nodeArgs?: string[];
  readyTimeoutMs?: number;
  /** See SpawnOptions.memoryLimitMb. */
  memoryLimitMb?: number;
}

/**
 * Starts a service with the environment of `cfg` and waits until its /readyz answers 200 (the
 * ingress serves it on its HTTP port, the workers on METRICS_PORT; a free one when `cfg` says 0).
 */
export async function spawnService(service: ServiceName, cfg: Config, o: ServiceOptions = {}): Promise<ServiceProcess> {
  const metricsPort = cfg.metricsPort || (await freePort());
  const replicaId = o.replicaId ?? cfg.replicaId;
  const readyPort = service === 'ingress' ? cfg.ingressPort : metricsPort;
  const child = await spawnChild({
    name: service,
    script: path.join(servicesRoot, 'services', service, 'main.js'),
    env: envOf({ ...cfg, metricsPort, replicaId }),
    nodeArgs: o.nodeArgs,
    readyUrl: `http://127.0.0.1:${readyPort}/readyz`,
    readyTimeoutMs: o.readyTimeoutMs,
    memoryLimitMb: o.memoryLimitMb,
  });
  return Object.assign(child, { service, replicaId, metricsPort });
}

/**
 * Copies the compiled services (dist/services, dist/shared, package.json; node_modules linked) to
 * `into` and starts services from there from now on, so a rebuild of dist/ during a long run
 * (tsc --watch, a colleague's build) cannot hand a restarted service half-written modules.
 */
export async function snapshotServices(into: string): Promise<void> {
  const repo = path.dirname(DIST);
  for (const dir of ['services', 'shared']) await cp(path.join(DIST, dir), path.join(into, 'dist', dir), { recursive: true });
  await cp(path.join(repo, 'package.json'), path.join(into, 'package.json'));
  await symlink(path.join(repo, 'node_modules'), path.join(into, 'node_modules'), 'dir');
  servicesRoot = path.join(into, 'dist');
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
