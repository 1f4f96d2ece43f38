/**
 * The run's one provider (http-server.ts in its own process) and the client of its ledger: what it
 * received, in arrival order. "Delivered" is the count of distinct message ids it answered 200.
 */
import path from 'node:path';
import { request } from 'undici';
import { freePort } from '../lib/ports.js';
import { DIST, spawnChild, type Child } from '../lib/processes.js';

export interface LedgerStats {
  received: number;
  /** Distinct message ids (`biz_opaque_callback_data`) received. */
  delivered: number;
  /** Sends whose id had been received before. */
  duplicates: number;
}

export interface LedgerEntry {
  seq: number;
  receivedAt: number;
  id: string | null;
}

/** The provider's ledger over HTTP (it runs in its own process). */
export class LedgerClient {
  constructor(private readonly url: string) {}

  private async call<T>(method: 'GET' | 'POST', p: string): Promise<T> {
    const res = await request(this.url + p, { method, headersTimeout: 30_000, bodyTimeout: 60_000 });
    if (res.statusCode !== 200) throw new Error(`provider ${p}: ${res.statusCode} ${await res.body.text()}`);
    return (await res.body.json()) as T;
  }

  stats(): Promise<LedgerStats> {
    return this.call<LedgerStats>('GET', '/_ledger/stats');
  }

  /** Up to `limit` entries with seq > after, arrival order. */
  async page(after: number, limit: number): Promise<LedgerEntry[]> {
    return (await this.call<{ entries: LedgerEntry[] }>('GET', `/_ledger/entries?after=${after}&limit=${limit}`)).entries;
  }

  /** Every entry with seq > after. */
  async entriesAfter(after: number, pageSize = 20_000): Promise<LedgerEntry[]> {
    const out: LedgerEntry[] = [];
    for (let from = after; ;) {
      const page = await this.page(from, pageSize);
      out.push(...page);
      if (page.length < pageSize) return out;
      from = page[page.length - 1].seq;
    }
  }

  /** Forgets everything received so far (between phases: keeps the ledger small). */
  async reset(): Promise<void> {
    await this.call('POST', '/_ledger/reset');
  }
}

export interface Provider {
  url: string;
  child: Child;
  ledger: LedgerClient;
}

/** Starts the bare Cloud-API-shaped server on a free port. */
export async function startProvider(): Promise<Provider> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = await spawnChild({
    name: 'provider',
    script: path.join(DIST, 'scripts', 'bench', 'http-server.js'),
    env: { PORT: String(port) },
    readyUrl: `${url}/`,
  });
  return { url, child, ledger: new LedgerClient(url) };
}
