/**
 * A private Redis (its own port, folder and pid file; no persistence) that a chaos scenario may
 * shut down and start again. The machine's Redis is never touched.
 */
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { portOpen } from './ports.js';
import { run } from './tools.js';
import { waitFor } from './wait.js';

export class PrivateRedis {
  readonly dir: string;

  constructor(
    base: string,
    readonly port: number,
  ) {
    this.dir = path.join(base, `redis-${port}`);
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  private get pidFile(): string {
    return path.join(this.dir, 'redis.pid');
  }

  async start(): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    // prettier-ignore
    await run('redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--daemonize', 'yes', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--pidfile', this.pidFile, '--logfile', path.join(this.dir, 'redis.log'),
    ]);
    await waitFor(async () => (await this.cli(['ping'])).trim() === 'PONG', { timeoutMs: 15_000, intervalMs: 100, what: `Redis on port ${this.port}` });
  }

  cli(args: string[]): Promise<string> {
    return run('redis-cli', ['-p', String(this.port), ...args], { timeoutMs: 10_000 }).then((r) => r.stdout);
  }

  /** `SHUTDOWN NOSAVE`: every key is gone when it comes back (no persistence). */
  async shutdown(): Promise<void> {
    if (!(await portOpen(this.port))) return;
    await this.cli(['shutdown', 'nosave']).catch(() => undefined); // the connection drops as it exits
    await waitFor(async () => !(await portOpen(this.port)), { timeoutMs: 15_000, intervalMs: 100, what: `Redis on port ${this.port} to stop` });
  }

  /** Sends a signal to the server process (SIGSTOP freezes it with every connection open; SIGCONT thaws it). */
  async signal(sig: 'SIGSTOP' | 'SIGCONT'): Promise<void> {
    const pid = Number((await readFile(this.pidFile, 'utf8')).trim());
    if (!(pid > 0)) throw new Error(`no pid in ${this.pidFile}`);
    process.kill(pid, sig);
  }

  /** Stops it (by pid if the CLI cannot) and removes its folder. */
  async destroy(): Promise<void> {
    await this.shutdown().catch(async () => {
      const pid = Number((await readFile(this.pidFile, 'utf8').catch(() => '')).trim());
      if (pid > 0) process.kill(pid, 'SIGKILL');
    });
    await rm(this.dir, { recursive: true, force: true });
  }
}
