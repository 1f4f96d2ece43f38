import { waitFor as poll } from '../../scripts/lib/wait.js';

/** Polls until `check` returns a truthy value or the deadline passes (no fixed sleeps in tests). */
export function waitFor<T>(check: () => T | Promise<T>, opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {}): Promise<NonNullable<T>> {
  return poll(check, { timeoutMs: opts.timeoutMs ?? 10_000, intervalMs: opts.intervalMs ?? 25, what: opts.what ?? 'condition' });
}
