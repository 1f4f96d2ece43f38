/**
 * The clock the rate limits are cut by: Redis server time, estimated as the local clock plus an
 * offset measured with `TIME` at start and every minute. Windows are named by time (see
 * slot-windows.ts), so two replicas whose clocks disagree by δ would count the same real instant
 * into different windows and let up to one extra window's worth through; reading one shared clock
 * removes that. The estimate is off by at most half the shortest of a few Redis round trips, and
 * is only adopted when that round trip is short (≤ 4 ms); until then the local clock is used.
 */
import type { Redis } from 'ioredis';

const RESYNC_MS = 60_000;
const RETRY_MS = 5000;
const SAMPLES = 5;
/** Samples slower than this are not trusted (their error is up to half of it). */
const MAX_SAMPLE_RTT_MS = 4;

export class RedisClock {
  private offsetMs = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly redis: Redis) {}

  /** Whole milliseconds since the epoch, on Redis's clock. */
  now(): number {
    return Math.floor(Date.now() + this.offsetMs);
  }

  /**
   * Measures the offset from a few `TIME` round trips and keeps the one with the shortest round trip
   * (NTP's rule: the tightest bracket is the most accurate). Keeps the previous offset if Redis does
   * not answer.
   */
  async sync(): Promise<boolean> {
    let best = Infinity;
    let offset = this.offsetMs;
    for (let i = 0; i < SAMPLES; i++) {
      try {
        const wallBefore = Date.now();
        const before = performance.now();
        const [s, us] = await this.redis.time();
        const rtt = performance.now() - before;
        if (rtt < best) {
          best = rtt;
          offset = Number(s) * 1000 + Number(us) / 1000 - (wallBefore + rtt / 2);
        }
      } catch {
        break; // Redis unreachable: the limiter itself will report it.
      }
    }
    // A slow round trip (a busy event loop, a congested link) brackets the server's time loosely:
    // a wrong offset is worse than none (the local clock, NTP-synced), so keep the previous one.
    if (best > MAX_SAMPLE_RTT_MS) return false;
    this.offsetMs = offset;
    return true;
  }

  async start(): Promise<void> {
    if (this.closed) return;
    const good = await this.sync();
    if (this.closed) return;
    this.timer = setTimeout(() => void this.start(), good ? RESYNC_MS : RETRY_MS).unref();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
