/**
 * Services as real child processes (`node dist/services/<name>/main.js` with the environment of a
 * configuration), so a scenario can SIGKILL them. The tests' SIGKILL cases start theirs through
 * this too (test/support/processes.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { cp, symlink } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envOf, type Config } from '../../shared/config.js';
import { freePort, waitFor } from './infra.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
let servicesRoot = dist;

/**
 * Copies the compiled services (dist/services, dist/shared, package.json; node_modules linked) to
 * `into` and starts services from there from now on, so a rebuild of dist/ during a long chaos run
 * (tsc --watch, a colleague's build) cannot hand a restarted service half-written modules.
 */
export async function snapshotServices(into: string): Promise<void> {
  const repo = path.dirname(dist);
  for (const dir of ['services', 'shared']) await cp(path.join(dist, dir), path.join(into, 'dist', dir), { recursive: true });
  await cp(path.join(repo, 'package.json'), path.join(into, 'package.json'));
  await symlink(path.join(repo, 'node_modules'), path.join(into, 'node_modules'), 'dir');
  servicesRoot = path.join(into, 'dist');
}

export type ServiceName = 'ingress' | 'dispatcher' | 'sender' | 'dlq-replayer';

export interface ServiceProcess {
  service: ServiceName;
  replicaId: string;
  child: ChildProcess;
  /** Where it serves /metrics (and, but for the ingress, /readyz). */
  metricsPort: number;
  /** The last 20 kB of its stdout and stderr. */
  output: () => string;
  exited: Promise<void>;
  /** Set once stop() or kill() was called: an exit without it is a crash. */
  readonly intended: boolean;
  /** SIGTERM and wait for the exit (graceful); SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: frozen with its connections open (a long GC pause, a CPU-throttled container). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

/**
 * Starts a service and waits until its /readyz answers 200 (the ingress serves it on its HTTP
 * port, the workers on METRICS_PORT).
 */
export async function spawnService(service: ServiceName, cfg: Config, replicaId: string, readyTimeoutMs = 60_000): Promise<ServiceProcess> {
  const metricsPort = await freePort();
  const readyPort = service === 'ingress' ? cfg.ingressPort : metricsPort;
  const env = { ...process.env, ...envOf({ ...cfg, metricsPort, replicaId }) };
  const child = spawn(process.execPath, ['--enable-source-maps', path.join(servicesRoot, 'services', service, 'main.js')], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (b: Buffer) => {
    out = (out + b.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = async (sig: NodeJS.Signals, graceMs = 15_000) => {
    if (!gone()) child.kill(sig);
    const timer = setTimeout(() => !gone() && child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };
  let intended = false;
  const proc: ServiceProcess = {
    service,
    replicaId,
    child,
    metricsPort,
    output: () => out,
    exited,
    get intended() {
      return intended;
    },
    stop: (graceMs) => {
      intended = true;
      if (!gone()) child.kill('SIGCONT'); // a frozen process handles SIGTERM only once it runs
      return signal('SIGTERM', graceMs);
    },
    kill: () => {
      intended = true;
      return signal('SIGKILL');
    },
    pause: () => void (gone() || child.kill('SIGSTOP')),
    resume: () => void (gone() || child.kill('SIGCONT')),
  };
  try {
    await waitFor(
      async () => {
        if (gone()) return true; // checked below
        const r = await fetch(`http://127.0.0.1:${readyPort}/readyz`).catch(() => null);
        return r?.status === 200;
      },
      { timeoutMs: readyTimeoutMs, intervalMs: 100, what: `${service} ${replicaId} ready` },
    );
    if (gone()) throw new Error(`${service} ${replicaId} exited before it was ready: ${out.slice(-2000)}`);
  } catch (err) {
    await proc.kill();
    throw err;
  }
  return proc;
}
