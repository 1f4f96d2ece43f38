/**
 * The broker's quorum-queue write-ahead log, watched during a measured window.
 *
 * RabbitMQ appends every quorum queue's commands to one WAL file per node; when it reaches
 * `raft.wal_max_size_bytes` (512 MB by default) the node opens a new one, and the segment writer
 * moves the old file's entries into each queue's segment files, then deletes it. Under the
 * pipeline's load that happens every few minutes, and on this 2-core machine the flush takes the
 * broker from ~0.6 to ~1.2 cores for ~4 s: every service then gets less CPU, and accept → provider
 * latency rises 3–30× for those seconds (docs/BENCHMARKS.md, "The broker's WAL flush"). Whether a
 * window's tail came from one is read here, from the WAL folder: two `.wal` files side by side = a
 * flush in progress.
 *
 * Needs read access to the broker's data folder (`rabbitmqctl eval` finds it), as on this machine
 * and in CI; where it has none (the broker in a container, on another host) `start()` gives null
 * and the report says "not watched".
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { run } from '../lib/tools.js';
import { percentile } from './delivery.js';

const SAMPLE_MS = 100;

/** A flush seen in the window: epoch ms from the first sample with two WAL files to the first with one again. */
export interface WalFlush {
  from: number;
  to: number;
}

/** What a window's report says about the broker's WAL. */
export interface WalReport {
  /** Flushes that overlapped the window. */
  flushes: number;
  /** Their total length, ms. */
  flushMs: number;
  /** p99 of the window's messages that were not in flight during a flush (null: no flush, or none left). */
  p99Clear: number | null;
}

let walDir: Promise<string | null> | null = null;

/** The folder holding this node's `.wal` files, or null when it cannot be read from here. */
function findWalDir(): Promise<string | null> {
  walDir ??= (async () => {
    // PMBENCH_WAL_DIR: the folder itself, for a node that the PATH's rabbitmqctl does not reach.
    if (process.env.PMBENCH_WAL_DIR) return process.env.PMBENCH_WAL_DIR;
    try {
      // The machine's broker: the rabbitmqctl on PATH (Debian's wrapper runs it with the broker's cookie),
      // not the bare tool the chaos script uses for its private nodes.
      const { stdout } = await run('rabbitmqctl', ['eval', 'application:get_env(ra, data_dir).'], { timeoutMs: 30_000 });
      const base = /"([^"]+)"/.exec(stdout)?.[1];
      if (!base) return null;
      // One sub-folder per node name (rabbit@localhost); it holds the WAL files.
      for (const d of readdirSync(base, { withFileTypes: true })) {
        if (!d.isDirectory()) continue;
        const dir = path.join(base, d.name);
        if (readdirSync(dir).some((f) => f.endsWith('.wal'))) return dir;
      }
      return null;
    } catch {
      return null;
    }
  })();
  return walDir;
}

export class WalWatch {
  private readonly flushes: WalFlush[] = [];
  private open: WalFlush | null = null;
  private last: string[] = [];
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly dir: string) {
    this.last = this.files();
    this.timer = setInterval(() => this.sample(), SAMPLE_MS);
    this.timer.unref();
  }

  /** Starts sampling the WAL folder, or null when it cannot be found or read. */
  static async start(): Promise<WalWatch | null> {
    const dir = await findWalDir();
    return dir ? new WalWatch(dir) : null;
  }

  private files(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((f) => f.endsWith('.wal'))
        .sort();
    } catch {
      return [];
    }
  }

  private sample(): void {
    const now = Date.now();
    const files = this.files();
    if (files.length > 1) {
      if (this.open) this.open.to = now;
      else this.open = { from: now, to: now };
    } else {
      if (this.open) this.flushes.push({ ...this.open, to: now });
      else if (files.length === 1 && this.last.length === 1 && files[0] !== this.last[0]) {
        // Rolled over and flushed between two samples.
        this.flushes.push({ from: now - SAMPLE_MS, to: now });
      }
      this.open = null;
    }
    this.last = files;
  }

  /** Stops sampling; the flushes seen (one still running counts up to now). */
  stop(): WalFlush[] {
    clearInterval(this.timer);
    this.sample();
    const all = this.open ? [...this.flushes, { ...this.open, to: Date.now() }] : [...this.flushes];
    this.open = null;
    return all;
  }
}

/**
 * The report for a window whose messages were in flight over [acceptedAt, receivedAt] (epoch ms),
 * from the flushes a WalWatch saw (`flushes` null: the WAL was not watched).
 */
export function walReport(flushes: WalFlush[] | null, spans: Array<[acceptedAt: number, receivedAt: number]>): WalReport | null {
  if (!flushes) return null;
  if (spans.length === 0) return { flushes: 0, flushMs: 0, p99Clear: null };
  const from = Math.min(...spans.map((s) => s[0]));
  const to = Math.max(...spans.map((s) => s[1]));
  const inWindow = flushes.filter((f) => f.to >= from && f.from <= to);
  if (inWindow.length === 0) return { flushes: 0, flushMs: 0, p99Clear: null };
  const overlaps = ([a, r]: [number, number]) => inWindow.some((f) => f.to >= a && f.from <= r);
  const clear = spans
    .filter((s) => !overlaps(s))
    .map(([a, r]) => r - a)
    .sort((x, y) => x - y);
  return {
    flushes: inWindow.length,
    flushMs: inWindow.reduce((sum, f) => sum + (f.to - f.from), 0),
    p99Clear: clear.length > 0 ? percentile(clear, 99) : null,
  };
}

/** The table's words for a window's report. */
export function walWords(w: WalReport | null | undefined): string {
  if (w === undefined) return '';
  if (w === null) return '; broker WAL not watched';
  if (w.flushes === 0) return '; no broker WAL flush in the window';
  const clear = w.p99Clear === null ? 'no message clear of it' : `p99 of the messages not in flight during it ${Math.round(w.p99Clear)} ms`;
  return `; broker WAL flush${w.flushes > 1 ? `es (${w.flushes})` : ''} in the window, ${(w.flushMs / 1000).toFixed(1)} s: ${clear}`;
}
