/**
 * The provider simulator: a real HTTP server speaking the WhatsApp Cloud API send contract
 * (DESIGN §7), with settable latency, error mix, throttles and outages, and a ledger of everything it
 * answered. It is the default provider of the local fleet and the oracle of tests and benchmarks.
 *
 * ```ts
 * const sim = await startSimulator({ accessToken: 't', faults: { throughputPerSecond: 80 } });
 * // PROVIDER_BASE_URL = sim.url
 * sim.accepted(); // what reached "WhatsApp", in arrival order
 * await sim.close();
 * ```
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { handleControl } from './control.js';
import { SimulatorCore, type SimulatorStats } from './core.js';
import { metaError } from './errors.js';
import type { FaultConfig } from './faults.js';
import { resetConnection, sendJson } from './http-io.js';
import type { LedgerEntry, LedgerFilter } from './ledger.js';
import { handleSend } from './messages.js';
import type { SimNumber } from './numbers.js';
import type { WebhookOptions } from './webhook.js';

export type { ErrorMixItem, FaultConfig, FaultRule } from './faults.js';
export type { LedgerEntry, LedgerFilter, LedgerStats } from './ledger.js';
export type { SimulatorStats } from './core.js';
export type { StatusName, WebhookOptions } from './webhook.js';

export interface SimulatorOptions {
  /** 0 = ephemeral (default 0). */
  port?: number;
  /** Default '127.0.0.1'. */
  host?: string;
  /** If set, sends to another phone number id get a 400 error (code 100, subcode 33). */
  phoneNumberId?: string;
  /** If set, a missing or wrong bearer token gets a 401 error (code 190). */
  accessToken?: string;
  /**
   * Several business numbers, each with its own token and throughput; when set, a send from any
   * other number gets the 400 of an unknown id (numbers.ts).
   */
  numbers?: SimNumber[];
  /** Messaging limits by portfolio: distinct users reached by business-initiated templates per 24 h (131048 past it). */
  messagingLimits?: Record<string, number>;
  /** Faults at start; `reset()` comes back to these. */
  faults?: Partial<FaultConfig>;
  /** Seed of the random error mix and jitter (deterministic runs); random when unset. */
  seed?: number;
  /** If set, POST signed status webhooks (Meta's shape) for each accepted message, best-effort, async. */
  webhook?: WebhookOptions;
  /**
   * Keep each request body in the ledger (default true). Set false for benchmarks: entries then keep
   * only seq, time, recipient, type, id, status and code (`body` is undefined), about 100 bytes each.
   */
  keepBodies?: boolean;
  /** Time source for the throttle windows and `receivedAt` (tests move it instead of sleeping). */
  clock?: () => number;
}

export interface Simulator {
  /** e.g. http://127.0.0.1:PORT — the PROVIDER_BASE_URL to use. */
  readonly url: string;
  readonly port: number;
  /** Answered send requests in arrival order (`after`/`limit` page through long benchmark ledgers). */
  ledger(filter?: LedgerFilter): LedgerEntry[];
  /** Only 2xx answers, arrival order. */
  accepted(): LedgerEntry[];
  /** Counters: received, accepted, by code, webhooks, numbers (over-limit sends, users reached). */
  stats(): SimulatorStats;
  /** Merge: each given key replaces the current value. */
  setFaults(f: Partial<FaultConfig>): void;
  /** Clears the ledger and counters, and brings faults back to the ones given at start. */
  reset(): void;
  /** Idempotent: the same promise every time. */
  close(): Promise<void>;
}

/** `/{version}/{phone-number-id}/messages`, version like v21.0. */
const SEND_PATH = /^\/v\d+(?:\.\d+)?\/([^/]+)\/messages\/?$/;

export async function startSimulator(opts: SimulatorOptions = {}): Promise<Simulator> {
  const core = new SimulatorCore(opts);
  const sockets = new Set<Socket>();
  const server = createServer((req, res) => void route(core, req, res));
  // Longer than any client's idle keep-alive (undici: 4 s), so the client, not us, closes idle sockets.
  server.keepAliveTimeout = 65_000;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await listen(server, opts.port ?? 0, opts.host ?? '127.0.0.1');
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    port,
    ledger: (filter) => core.ledger.entries(filter),
    accepted: () => core.ledger.entries({ accepted: true }),
    stats: () => core.stats(),
    setFaults: (f) => core.faults.set(f),
    reset: () => core.reset(),
    close: () => (closing ??= shutdown(server, sockets, core)),
  };
}

async function route(core: SimulatorCore, req: IncomingMessage, res: ServerResponse): Promise<void> {
  try {
    const url = new URL(req.url ?? '/', 'http://simulator');
    if (await handleControl(core, req, res, url)) return;
    if (core.faults.isDown) return resetConnection(req);
    const send = SEND_PATH.exec(url.pathname);
    if (send && req.method === 'POST') return await handleSend(core, req, res, decodeURIComponent(send[1]));
    sendJson(res, 404, metaError(100, { message: `Unsupported ${req.method?.toLowerCase()} request.`, details: url.pathname }));
  } catch (err) {
    sendJson(res, 500, metaError(1, { details: err instanceof Error ? err.message : String(err) }));
  }
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/** Each step runs even if an earlier one failed: stop listening, drop sockets, stop timers and webhooks. */
async function shutdown(server: Server, sockets: Set<Socket>, core: SimulatorCore): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  for (const socket of sockets) socket.destroy();
  const results = await Promise.allSettled([closed, core.close()]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}
