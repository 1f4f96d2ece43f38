/**
 * Helpers for private infrastructure (chaos runs, `npm run cluster`, the chaos test): running the
 * RabbitMQ and Redis command-line tools, free ports, waiting, and a teardown list that also runs
 * on Ctrl-C. Nothing here touches the machine's own RabbitMQ or Redis.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command; rejects with its stderr on a non-zero exit or after `timeoutMs`. */
export async function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {}): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, {
      env: opts.env ?? process.env,
      timeout: opts.timeoutMs ?? 60_000,
      cwd: opts.cwd,
      maxBuffer: 4 * 1024 * 1024,
    });
    return { stdout: String(stdout), stderr: String(stderr) };
  } catch (err) {
    const e = err as Error & { stderr?: string; stdout?: string; code?: unknown };
    const detail = (e.stderr || e.stdout || e.message).trim().split('\n').slice(0, 6).join(' | ');
    throw new Error(`${path.basename(cmd)} ${args.join(' ')} failed (${String(e.code ?? 'error')}): ${detail}`, { cause: err });
  }
}

/** The directory of a command on PATH, or null. */
export function onPath(cmd: string): string | null {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir && existsSync(path.join(dir, cmd))) return path.join(dir, cmd);
  }
  return null;
}

/**
 * Where RabbitMQ's own scripts are. The Debian/Ubuntu package puts wrappers in /usr/sbin that
 * switch to the `rabbitmq` user (and refuse anyone else); the real scripts in /usr/lib/rabbitmq/bin
 * run as whoever calls them, with our environment, which is what a private node needs.
 */
export function rabbitTool(tool: 'rabbitmq-server' | 'rabbitmqctl'): string {
  const debian = path.join('/usr/lib/rabbitmq/bin', tool);
  if (existsSync(debian)) return debian;
  return onPath(tool) ?? tool;
}

/** True when a private RabbitMQ node and Redis can be started on this machine. */
export function privateInfraAvailable(): { ok: true } | { ok: false; why: string } {
  if (!onPath('rabbitmq-server') && !existsSync('/usr/lib/rabbitmq/bin/rabbitmq-server')) {
    return { ok: false, why: 'rabbitmq-server is not on PATH (install RabbitMQ 3.10+ to run the chaos scenarios)' };
  }
  if (!onPath('redis-server') || !onPath('redis-cli')) return { ok: false, why: 'redis-server / redis-cli are not on PATH' };
  return { ok: true };
}

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

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}

export function portOpen(port: number, host = '127.0.0.1', timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `check` returns a truthy value; throws naming `what` after the deadline. */
export async function waitFor<T>(check: () => T | Promise<T>, opts: { timeoutMs: number; intervalMs?: number; what: string }): Promise<NonNullable<T>> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v as NonNullable<T>;
      last = v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    }
    await sleep(opts.intervalMs ?? 250);
  }
}

/**
 * Steps that undo what was started, run in reverse order, each even if an earlier one failed;
 * `run()` is idempotent. `onSignals()` runs them on Ctrl-C / SIGTERM before exiting.
 */
export class Teardown {
  private readonly steps: Array<[string, () => Promise<unknown>]> = [];
  private running: Promise<void> | null = null;

  add(name: string, fn: () => Promise<unknown>): void {
    this.steps.push([name, fn]);
  }

  run(log: (line: string) => void = (l) => console.error(l)): Promise<void> {
    return (this.running ??= (async () => {
      for (const [name, fn] of this.steps.reverse()) {
        try {
          await fn();
        } catch (err) {
          log(`teardown: ${name} failed: ${(err as Error).message}`);
        }
      }
    })());
  }

  onSignals(log: (line: string) => void = (l) => console.error(l)): void {
    const handler = (signal: NodeJS.Signals) => {
      log(`\n${signal}: tearing down the private infrastructure…`);
      void this.run(log).finally(() => process.exit(130));
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  }
}
