/**
 * Several business numbers, as the Cloud API keeps them: each with its own access token and its own
 * throughput (130429 past it), and the messaging limit of each business portfolio — distinct users
 * reached by business-initiated messages (templates outside the customer-service window) per
 * rolling 24 hours, shared by the portfolio's numbers. Meta documents no error code of its own for
 * an exceeded messaging limit; the simulator answers 131048 ("Spam rate limit hit": restrictions
 * on how many messages this number may send) and counts each such send in `overLimit`.
 */
import { THROUGHPUT_LIMIT } from './errors.js';
import { RateWindow } from './limits.js';
import { WINDOW_MS } from './windows.js';

export const MESSAGING_LIMIT_CODE = 131048;

export interface SimNumber {
  id: string;
  /** Its own token; default: the simulator's `accessToken`. */
  accessToken?: string;
  /** Sends per second before 130429; default: no limit of its own. */
  throughputPerSecond?: number;
  /** Business portfolio; default "default". */
  portfolio?: string;
}

export interface NumbersStats {
  /** Business-initiated sends refused for the messaging limit. */
  overLimit: number;
  /** Distinct users reached by business-initiated messages in the last 24 hours, by portfolio. */
  businessInitiated: Record<string, number>;
}

export class SimNumbers {
  private readonly byId = new Map<string, SimNumber>();
  private readonly throughput = new Map<string, RateWindow>();
  /** Per portfolio: user → when their business-initiated conversation began. */
  private readonly reached = new Map<string, Map<string, number>>();
  private overLimit = 0;

  constructor(
    numbers: SimNumber[] = [],
    /** Distinct users per 24 h by portfolio; a portfolio not named has no limit. */
    readonly messagingLimits: Record<string, number> = {},
  ) {
    for (const n of numbers) {
      this.byId.set(n.id, n);
      if (n.throughputPerSecond) this.throughput.set(n.id, new RateWindow(n.throughputPerSecond, 1000));
    }
  }

  /** Whether numbers are configured at all (else the simulator's single `phoneNumberId` rules). */
  get configured(): boolean {
    return this.byId.size > 0;
  }

  get(id: string): SimNumber | undefined {
    return this.byId.get(id);
  }

  /** 130429 when `id` is past its own throughput at `now`; records the send otherwise. */
  throttled(id: string, now: number): number | null {
    const w = this.throughput.get(id);
    if (!w) return null;
    if (!w.allows(now)) return THROUGHPUT_LIMIT;
    w.record(now);
    return null;
  }

  /** A business-initiated message from `id` to `user`: 131048 past the portfolio's limit, else counted. */
  businessInitiated(id: string, user: string, now: number): number | null {
    const portfolio = this.byId.get(id)?.portfolio ?? 'default';
    const limit = this.messagingLimits[portfolio];
    if (limit === undefined) return null;
    const users = this.reached.get(portfolio) ?? new Map<string, number>();
    this.reached.set(portfolio, users);
    for (const [u, at] of users) if (at <= now - WINDOW_MS) users.delete(u);
    if (users.has(user)) return null;
    if (users.size >= limit) {
      this.overLimit++;
      return MESSAGING_LIMIT_CODE;
    }
    users.set(user, now);
    return null;
  }

  stats(now: number): NumbersStats {
    const businessInitiated: Record<string, number> = {};
    for (const [p, users] of this.reached) businessInitiated[p] = [...users.values()].filter((at) => at > now - WINDOW_MS).length;
    return { overLimit: this.overLimit, businessInitiated };
  }

  clear(): void {
    this.reached.clear();
    this.overLimit = 0;
    for (const [id, w] of this.throughput) this.throughput.set(id, new RateWindow(w.limit, w.windowMs));
  }
}
