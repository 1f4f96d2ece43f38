/**
 * Graceful shutdown as an ordered list of steps, each run even if an earlier one failed
 * (cf. BullMQ's close()). main.ts registers SIGTERM/SIGINT once.
 */
import type { Logger } from './logger.js';

export interface Closable {
  close(): Promise<void>;
}

export async function runSteps(log: Logger, steps: Array<[string, () => Promise<unknown> | unknown]>): Promise<void> {
  for (const [name, fn] of steps) {
    try {
      await fn();
    } catch (err) {
      log.error({ err: (err as Error)?.message, step: name }, 'shutdown step failed');
    }
  }
}

/** Calls stop() on the first SIGTERM/SIGINT; a second signal exits at once. */
export function onSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err: (err as Error)?.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}

/**
 * Runs a service's start-up; a failure (broker unreachable, plugin missing, bad config) ends the
 * process with its one-sentence message instead of a stack trace.
 */
export async function runMain(start: () => Promise<{ close(): Promise<void>; log: Logger }>): Promise<void> {
  try {
    const svc = await start();
    onSignals(svc.log, () => svc.close());
    // A rejection nobody handled means some work's outcome was lost: the process may now be in a
    // state no code path expects. Say so and exit; the supervisor (Kubernetes, npm start) restarts
    // it, and the broker redelivers whatever it had not acked.
    process.on('unhandledRejection', (reason) => {
      const err = reason as Error;
      svc.log.fatal({ err: err?.message ?? String(reason), stack: err?.stack }, 'unhandled rejection: exiting');
      process.exit(70);
    });
  } catch (err) {
    console.error(`postmaster: ${(err as Error)?.message ?? String(err)}`);
    process.exit(1);
  }
}
