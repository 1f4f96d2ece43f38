/**
 * Totals of a set of dead letters by class, code, stage and age: what `stats` prints and what a
 * job's pre-scan counts.
 */
import type { DeadLetter } from './dead-letter.js';

/** Upper bounds of the age buckets, by label; the last bucket is open-ended. */
export const AGE_BUCKETS: ReadonlyArray<readonly [string, number]> = [
  ['<10m', 10 * 60_000],
  ['10m-1h', 3_600_000],
  ['1h-6h', 6 * 3_600_000],
  ['6h-1d', 86_400_000],
  ['1d-7d', 7 * 86_400_000],
  ['>7d', Infinity],
];

export interface DlqSummary {
  total: number;
  byClass: Record<string, number>;
  byCode: Record<string, number>;
  byStage: Record<string, number>;
  byAge: Record<string, number>;
  /** Failure time of the oldest and newest dead letter (ISO), when known. */
  oldest: string | null;
  newest: string | null;
}

export function ageBucket(failedAt: number | null, now: number): string {
  if (failedAt === null) return 'unknown';
  const age = now - failedAt;
  return AGE_BUCKETS.find(([, upTo]) => age < upTo)?.[0] ?? '>7d';
}

export class SummaryBuilder {
  private total = 0;
  private readonly byClass: Record<string, number> = {};
  private readonly byCode: Record<string, number> = {};
  private readonly byStage: Record<string, number> = {};
  private readonly byAge: Record<string, number> = Object.fromEntries(AGE_BUCKETS.map(([label]) => [label, 0]));
  private oldest = Infinity;
  private newest = -Infinity;

  constructor(private readonly now = Date.now()) {}

  add(dl: DeadLetter): void {
    const inc = (into: Record<string, number>, key: string) => (into[key] = (into[key] ?? 0) + 1);
    this.total++;
    inc(this.byClass, dl.failureClass);
    inc(this.byCode, dl.code);
    inc(this.byStage, dl.lane ?? dl.stage ?? 'unknown');
    inc(this.byAge, ageBucket(dl.failedAt, this.now));
    if (dl.failedAt !== null) {
      this.oldest = Math.min(this.oldest, dl.failedAt);
      this.newest = Math.max(this.newest, dl.failedAt);
    }
  }

  result(): DlqSummary {
    const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : null);
    return {
      total: this.total,
      byClass: this.byClass,
      byCode: this.byCode,
      byStage: this.byStage,
      byAge: this.byAge,
      oldest: iso(this.oldest),
      newest: iso(this.newest),
    };
  }
}
