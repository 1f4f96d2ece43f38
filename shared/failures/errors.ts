/**
 * Small named error classes that decide what happens to a failed message (docs/ARCHITECTURE.md, "Failures"; cf. BullMQ's
 * UnrecoverableError). Every one keeps its `cause`.
 */
export const FAILURE_CLASSES = ['transient', 'throttled', 'permanent', 'poison', 'window-closed'] as const;
export type FailureClass = (typeof FAILURE_CLASSES)[number];

export interface FailureDetails {
  /** Provider or internal code: a Cloud API error code ("131026"), an HTTP status ("http-503"), "timeout"... */
  code: string;
  /** Milliseconds the provider asked us to wait (Retry-After), if any. */
  retryAfterMs?: number;
  cause?: unknown;
}

export abstract class ClassifiedError extends Error {
  abstract readonly failureClass: FailureClass;
  readonly code: string;
  readonly retryAfterMs?: number;

  constructor(message: string, details: FailureDetails) {
    super(message, { cause: details.cause });
    this.code = details.code;
    this.retryAfterMs = details.retryAfterMs;
  }
}

/** Worth trying again later: next retry tier; after the last tier, the DLQ. */
export class TransientError extends ClassifiedError {
  readonly failureClass = 'transient' as const;
  override readonly name = 'TransientError';
}

/** A rate limit said wait: re-tiered without counting an attempt. */
export class ThrottledError extends ClassifiedError {
  readonly failureClass = 'throttled' as const;
  override readonly name = 'ThrottledError';
}

/** Will never succeed as it is (bad number, expired token, template error): DLQ at once. */
export class PermanentError extends ClassifiedError {
  readonly failureClass = 'permanent' as const;
  override readonly name = 'PermanentError';
}

/**
 * A free-form message to a user whose customer-service window is closed (no message from them in
 * the last 24 hours): Postmaster's own check (code `window-closed`, no provider call) or the Cloud
 * API's 131047. Only a template reaches the user now, so it is sent as its fallback template when it
 * has one; without one it is dead-lettered at once (a replay after the user writes again succeeds).
 */
export class WindowClosedError extends ClassifiedError {
  readonly failureClass = 'window-closed' as const;
  override readonly name = 'WindowClosedError';
}

/** The message itself is broken (unparsable, invalid, crashes its handler): DLQ at once. */
export class PoisonMessageError extends ClassifiedError {
  readonly failureClass = 'poison' as const;
  override readonly name = 'PoisonMessageError';
}

/** Anything unclassified is treated as transient: retrying is safe, giving up early is not. */
export function asClassified(err: unknown): ClassifiedError {
  if (err instanceof ClassifiedError) return err;
  const e = err as Error;
  return new TransientError(`unexpected error: ${e?.message ?? String(err)}`, { code: 'unexpected', cause: err });
}
