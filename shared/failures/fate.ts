/**
 * The one function that decides what happens to a failed message (STYLE rule 4).
 */
import type { ClassifiedError } from './errors.js';

export type Fate =
  | { action: 'retry'; tierIndex: number; tierMs: number; attempt: number }
  | { action: 'dead'; attempt: number; reason: 'permanent' | 'poison' | 'exhausted' | 'window-closed' };

/**
 * @param attempt failures counted so far for this message, before this one
 * @param tiersMs the retry tiers, ascending
 */
export function decideFate(err: ClassifiedError, attempt: number, tiersMs: number[]): Fate {
  switch (err.failureClass) {
    case 'permanent':
      return { action: 'dead', attempt: attempt + 1, reason: 'permanent' };
    case 'poison':
      return { action: 'dead', attempt: attempt + 1, reason: 'poison' };
    case 'window-closed':
      // A retry cannot open the window: only a message from the user (then a replay) or a template.
      return { action: 'dead', attempt: attempt + 1, reason: 'window-closed' };
    case 'throttled': {
      // Does not count as an attempt. Wait in the longest tier that does not overshoot the advised
      // wait (a 6 s pair wait with tiers 1s,5s,30s waits 5 s, not 30 s); whatever is left is waited
      // out in-process by the limiter or by another cheap re-tier.
      const i = tierAtMost(tiersMs, err.retryAfterMs ?? 0);
      return { action: 'retry', tierIndex: i, tierMs: tiersMs[i], attempt };
    }
    case 'transient': {
      const next = attempt + 1;
      if (next > tiersMs.length) return { action: 'dead', attempt: next, reason: 'exhausted' };
      // Exponential backoff is the tier ladder itself; Retry-After may push to a longer tier.
      const i = tierAtLeast(tiersMs, err.retryAfterMs ?? 0, next - 1);
      return { action: 'retry', tierIndex: i, tierMs: tiersMs[i], attempt: next };
    }
  }
}

/** Index of the shortest tier, not below `from`, whose delay is at least `ms` (else the longest). */
export function tierAtLeast(tiersMs: number[], ms: number, from: number): number {
  for (let i = from; i < tiersMs.length; i++) if (tiersMs[i] >= ms) return i;
  return tiersMs.length - 1;
}

/** Index of the longest tier whose delay is at most `ms` (else the shortest). */
export function tierAtMost(tiersMs: number[], ms: number): number {
  let i = 0;
  while (i + 1 < tiersMs.length && tiersMs[i + 1] <= ms) i++;
  return i;
}
