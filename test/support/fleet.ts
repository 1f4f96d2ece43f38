/**
 * The whole pipeline in-process on ephemeral ports: simulator, ingress, dispatcher(s), sender(s).
 */
import { request } from 'undici';
import type { Config } from '../../shared/platform/config.js';
import type { Logger } from '../../shared/platform/logger.js';
import { startDispatcher, type Dispatcher } from '../../services/dispatcher/service.js';
import { startIngress, type Ingress } from '../../services/ingress/service.js';
import { startSender, type Sender } from '../../services/sender/service.js';
import { startSimulator, type Simulator, type SimulatorOptions, type StatusName } from '../../services/simulator/server.js';
import type { Isolation } from './isolation.js';
import { waitFor } from './wait.js';

export interface HttpAnswer {
  status: number;
  body: any;
  text: string;
  headers: Record<string, unknown>;
}

export interface CallOptions {
  /** A string or Buffer is sent as is; anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Bearer token; null sends no Authorization header. Default: the fleet's INGRESS_API_TOKEN. */
  token?: string | null;
}

export interface Fleet {
  sim: Simulator;
  ingress: Ingress;
  dispatchers: Dispatcher[];
  senders: Sender[];
  cfg: Config;
  send(body: Record<string, unknown>, headers?: Record<string, string>): Promise<{ status: number; body: any; headers: Record<string, unknown> }>;
  /** Any request to the ingress. */
  call(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, opts?: CallOptions): Promise<HttpAnswer>;
  /** Closes dispatcher `i` and starts a new one in its place (same config, new replica id). */
  restartDispatcher(i: number): Promise<Dispatcher>;
  close(): Promise<void>;
}

export interface FleetOptions {
  overrides?: Partial<Config>;
  simulator?: SimulatorOptions;
  dispatchers?: number;
  senders?: number;
  /** The simulator posts these signed status webhooks to the ingress for each accepted send. */
  statusWebhooks?: StatusName[];
  /** The ingress's logger (default: one at LOG_LEVEL, silent in tests), for tests that read its lines. */
  ingressLogger?: Logger;
}

/** The shards each stage worker owns now. */
export function ownedShards(workers: Array<{ worker: { ownedShards(): number[] } }>): number[][] {
  return workers.map((w) => w.worker.ownedShards());
}

/** Settled: every one of `shards` shards owned by exactly one of the workers. */
export function shardsSettled(workers: Array<{ worker: { ownedShards(): number[] } }>, shards: number): boolean {
  const all = ownedShards(workers).flat();
  return all.length === shards && new Set(all).size === shards;
}

export async function startFleet(iso: Isolation, opts: FleetOptions = {}): Promise<Fleet> {
  let ingress: Ingress | undefined;
  let sim: Simulator;
  if (opts.statusWebhooks) {
    // The simulator needs the ingress's URL, the ingress does not need the simulator's.
    const pre = iso.config(opts.overrides);
    ingress = await startIngress(pre, { logger: opts.ingressLogger });
    sim = await startSimulator({
      ...opts.simulator,
      webhook: { url: `${ingress.url}/webhooks/whatsapp`, appSecret: pre.whatsappAppSecret, statuses: opts.statusWebhooks },
    });
  } else {
    sim = await startSimulator(opts.simulator ?? {});
  }
  const cfg = iso.config({ providerBaseUrl: sim.url, ...opts.overrides });
  ingress ??= await startIngress(cfg, { logger: opts.ingressLogger });
  const ing = ingress;
  const dispatchers: Dispatcher[] = [];
  const senders: Sender[] = [];
  let restarts = 0;
  for (let i = 0; i < (opts.dispatchers ?? 1); i++) dispatchers.push(await startDispatcher({ ...cfg, replicaId: `dispatcher-${i}` }));
  for (let i = 0; i < (opts.senders ?? 1); i++) senders.push(await startSender({ ...cfg, replicaId: `sender-${i}` }));
  // Replicas that start one after the other hand shards over for their first seconds: a test's
  // traffic starts once every shard has one owner and every replica has its share.
  for (const workers of [dispatchers, senders] as Array<Array<Dispatcher | Sender>>) {
    if (workers.length < 2 || cfg.workerLanes === 'urgent') continue;
    await waitFor(() => shardsSettled(workers, cfg.shards) && (cfg.shards < workers.length || workers.every((w) => w.worker.ownedShards().length > 0)), {
      timeoutMs: 30_000,
      intervalMs: 50,
      what: `the shards spread over ${workers.length} replicas`,
    });
  }
  const call = async (method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, o: CallOptions = {}): Promise<HttpAnswer> => {
    const token = o.token === undefined ? cfg.ingressApiToken : o.token;
    const raw = typeof o.body === 'string' || Buffer.isBuffer(o.body);
    const res = await request(`${ing.url}${path}`, {
      method,
      headers: {
        ...(token !== null ? { authorization: `Bearer ${token}` } : {}),
        ...(o.body !== undefined && !raw ? { 'content-type': 'application/json' } : {}),
        ...o.headers,
      },
      body: o.body === undefined ? undefined : raw ? (o.body as string | Buffer) : JSON.stringify(o.body),
    });
    const text = await res.body.text();
    let body: unknown = text;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      // not JSON: keep the text
    }
    return { status: res.statusCode, body, text, headers: res.headers };
  };
  return {
    sim,
    ingress: ing,
    dispatchers,
    senders,
    cfg,
    async send(body, headers = {}) {
      const res = await request(`${ing.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cfg.ingressApiToken}`, 'content-type': 'application/json', ...headers },
        body: JSON.stringify(body),
      });
      const text = await res.body.text();
      return { status: res.statusCode, body: text ? JSON.parse(text) : null, headers: res.headers };
    },
    call,
    async restartDispatcher(i) {
      await dispatchers[i].close();
      dispatchers[i] = await startDispatcher({ ...cfg, replicaId: `dispatcher-${i}-r${++restarts}` });
      return dispatchers[i];
    },
    async close() {
      await ing.close();
      await Promise.all(dispatchers.map((d) => d.close()));
      await Promise.all(senders.map((s) => s.close()));
      await sim.close();
    },
  };
}
