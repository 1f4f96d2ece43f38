/**
 * Helpers of the DLQ tests: the CLI as a child process, dead letters crafted the way the fleet
 * (or the broker) writes them, and raw-amqplib looks at queues that do not go through the code
 * under test.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import amqplib from 'amqplib';
import { envOf, type Config } from '../../shared/platform/config.js';
import { H, newEnvelope } from '../../shared/domain/envelope.js';
import { names } from '../../shared/amqp/topology/names.js';
import type { DeadLetter } from '../../scripts/lib/dlq.js';

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(dist, 'services', 'dlq-replayer', 'cli.js');

export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
  json(): any;
}

/** Runs `postmaster-dlq` with the configuration's environment; stdin is a pipe (not a terminal). */
export function runCli(cfg: Config, args: string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], {
      env: { ...process.env, ...envOf(cfg) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.once('error', reject);
    // 'close', not 'exit': the output may still be in the pipes when the process exits.
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({
        code,
        stdout,
        stderr,
        json: () => {
          try {
            return JSON.parse(stdout);
          } catch {
            throw new Error(`postmaster-dlq ${args.join(' ')} printed no JSON (exit ${code}): ${stdout}\n${stderr}`);
          }
        },
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

export interface CraftedDeadLetter {
  user: string;
  stage?: 'dispatch' | 'send';
  code?: string;
  cls?: 'transient' | 'throttled' | 'permanent' | 'poison';
  failedAgoMs?: number;
  replays?: number;
  /** Dead-lettered by the broker (delivery limit on a shard queue): x-death instead of failure headers. */
  broker?: boolean;
  /** A body that is not an envelope (poison). */
  rawBody?: string;
}

export interface Crafted {
  id: string;
  user: string;
  content: Buffer;
  headers: Record<string, unknown>;
}

/** A dead letter with the headers FailureRouter.headersFor writes (or the broker's x-death). */
export function craft(prefix: string, spec: CraftedDeadLetter): Crafted {
  const n = names(prefix);
  const stage = spec.stage ?? 'send';
  const env = newEnvelope({ kind: 'outbound', user: spec.user, priority: 'normal', payload: { type: 'text', text: { body: `hello ${spec.user}` } } });
  const at = new Date(Date.now() - (spec.failedAgoMs ?? 1000));
  const base: Record<string, unknown> = { [H.lane]: stage, [H.stage]: stage, [H.attempt]: spec.broker ? 0 : 1, [H.acceptedAt]: Date.parse(env.createdAt) };
  if (spec.replays) base[H.replays] = spec.replays;
  const headers = spec.broker
    ? {
        ...base,
        'x-death': [
          {
            count: 1,
            reason: 'delivery_limit',
            queue: n.shardQueue(stage, 2),
            time: { '!': 'timestamp', value: Math.floor(at.getTime() / 1000) },
            exchange: n.laneExchange(stage),
            'routing-keys': [spec.user],
          },
        ],
      }
    : {
        ...base,
        [H.user]: spec.user,
        [H.firstFailureAt]: at.toISOString(),
        [H.lastFailureAt]: at.toISOString(),
        [H.failureClass]: spec.cls ?? 'permanent',
        [H.failureCode]: spec.code ?? '131026',
        [H.failureMessage]: `provider answered 400 code ${spec.code ?? '131026'}: crafted`,
        [H.originExchange]: n.laneExchange(stage),
        [H.originRoutingKey]: spec.user,
      };
  const content = Buffer.from(spec.rawBody ?? JSON.stringify({ ...env, attempt: spec.broker ? 0 : 1 }));
  return { id: env.id, user: spec.user, content, headers };
}

/** Publishes crafted dead letters to `<prefix>.dead`, confirmed, in order. */
export async function publishDeadLetters(amqpUrl: string, prefix: string, specs: CraftedDeadLetter[]): Promise<Crafted[]> {
  const out = specs.map((s) => craft(prefix, s));
  const conn = await amqplib.connect(amqpUrl);
  try {
    const ch = await conn.createConfirmChannel();
    for (const c of out) {
      ch.publish(names(prefix).dead, '', c.content, { persistent: true, contentType: 'application/json', messageId: c.id, headers: c.headers });
    }
    await ch.waitForConfirms();
    await ch.close();
  } finally {
    await conn.close();
  }
  return out;
}

/** A message as drainQueue reads it, its body parsed when it is JSON. */
export type Peeked = Omit<DeadLetter, 'body'> & { body: any };

/**
 * The messages of a queue, in order, without removing them: consume everything unacked, then close
 * the channel (the broker returns them in order). For DLQs, lanes without consumers, etc.
 */
export async function peekQueue(amqpUrl: string, queue: string): Promise<Peeked[]> {
  const conn = await amqplib.connect(amqpUrl);
  try {
    const ch = await conn.createChannel();
    const depth = (await ch.checkQueue(queue)).messageCount;
    const got: Peeked[] = [];
    if (depth > 0) {
      await ch.prefetch(depth);
      let done!: () => void;
      const all = new Promise<void>((r) => (done = r));
      await ch.consume(queue, (m) => {
        if (!m) return;
        let body: unknown = m.content.toString();
        try {
          body = JSON.parse(body as string);
        } catch {
          // raw
        }
        got.push({ id: m.properties.messageId, routingKey: m.fields.routingKey, headers: m.properties.headers ?? {}, body });
        if (got.length >= depth) done();
      });
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`peek of ${queue}: got ${got.length} of ${depth}`)), 10_000)));
      await Promise.race([all, late]).finally(() => clearTimeout(timer));
    }
    await ch.close();
    return got;
  } finally {
    await conn.close();
  }
}

/** Peeks every queue and concatenates (for the shard queues of a stage). */
export async function peekQueues(amqpUrl: string, queues: string[]): Promise<Peeked[]> {
  const out: Peeked[] = [];
  for (const q of queues) out.push(...(await peekQueue(amqpUrl, q)));
  return out;
}

/** Ids of the dead letters in a peek, markers left out. */
export function ids(peeked: Peeked[]): Array<string | undefined> {
  return peeked.filter((p) => p.headers['x-postmaster-replay-marker'] === undefined).map((p) => p.id);
}
