/**
 * A service's real entry point (`node dist/services/<name>/main.js`) under an environment the test
 * writes in full: nothing is inherited but PATH, so a secret the test leaves out is really absent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../scripts/lib/ports.js';
import type { Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

export type MainService = 'ingress' | 'dispatcher' | 'sender' | 'dlq-replayer';

export interface MainProcess {
  child: ChildProcess;
  metricsPort: number;
  /** stdout and stderr so far. */
  output(): string;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
  stop(): Promise<void>;
}

/** A secret that passes the production checks (the length of a `openssl rand -hex 32`). */
export const strong = (tag: string) => `${tag}-${'0123456789abcdef'.repeat(4)}`;

/** Where an isolated service connects, as environment variables, plus its ports. */
export async function isolatedEnv(iso: Isolation): Promise<Record<string, string>> {
  return {
    AMQP_URL: iso.amqpUrl,
    REDIS_URL: iso.config().redisUrl,
    REDIS_KEY_PREFIX: iso.redisKeyPrefix,
    RABBITMQ_MANAGEMENT_URL: iso.config().managementUrl,
    INGRESS_HOST: '127.0.0.1',
    INGRESS_PORT: String(await freePort()),
    METRICS_PORT: String(await freePort()),
    SHARDS: '2',
    LOG_LEVEL: 'info',
  };
}

export function startMain(service: MainService, env: Record<string, string>): MainProcess {
  const child = spawn(process.execPath, [path.join(DIST, 'services', service, 'main.js')], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    metricsPort: Number(env.METRICS_PORT ?? 0),
    output: () => out,
    exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Waits until the process answers 200 on METRICS_PORT's /readyz; fails at once if it exits. */
export async function untilReady(p: MainProcess, timeoutMs = 30_000): Promise<void> {
  const ready = waitFor(async () => (await fetch(`http://127.0.0.1:${p.metricsPort}/readyz`).catch(() => null))?.status === 200, {
    timeoutMs,
    intervalMs: 100,
    what: 'the service to be ready on METRICS_PORT',
  });
  const died = p.exited.then((code) => {
    throw new Error(`exited with ${code} before it was ready: ${p.output().slice(-2000)}`);
  });
  await Promise.race([ready, died]);
}
