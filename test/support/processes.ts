/**
 * Services as real child processes (for SIGKILL tests): `node dist/services/<name>/main.js` with
 * the environment of a test configuration.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { envOf, type Config } from '../../shared/config.js';
import { waitFor } from './wait.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

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

export interface ServiceProcess {
  child: ChildProcess;
  metricsPort: number;
  output: () => string;
  /** SIGTERM and wait for the exit (graceful). */
  stop(): Promise<void>;
  /** SIGKILL and wait for the exit. */
  kill(): Promise<void>;
  /** SIGSTOP: the process freezes with its connections open (a long GC pause, a throttled container). */
  pause(): void;
  /** SIGCONT after pause(). */
  resume(): void;
}

export async function spawnService(service: string, cfg: Config, overrides: Partial<Config> = {}): Promise<ServiceProcess> {
  const metricsPort = await freePort();
  const env = { ...process.env, ...envOf({ ...cfg, ...overrides, metricsPort }) };
  const child = spawn(process.execPath, ['--enable-source-maps', path.join(dist, 'services', service, 'main.js')], {
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
  await waitFor(
    async () => {
      if (child.exitCode !== null) throw new Error(`${service} exited: ${out.slice(-2000)}`);
      const r = await fetch(`http://127.0.0.1:${metricsPort}/readyz`).catch(() => null);
      return r?.status === 200;
    },
    { timeoutMs: 30_000, intervalMs: 100, what: `${service} ready` },
  );
  const running = () => child.exitCode === null && child.signalCode === null;
  const signal = async (sig: NodeJS.Signals) => {
    if (running()) child.kill(sig);
    await exited;
  };
  return {
    child,
    metricsPort,
    output: () => out,
    // A stopped process handles SIGTERM only once it runs again: continue it first.
    stop: async () => {
      if (running()) child.kill('SIGCONT');
      await signal('SIGTERM');
    },
    kill: () => signal('SIGKILL'),
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
  };
}
