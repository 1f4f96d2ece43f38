/**
 * Graceful shutdown as an ordered list of steps, each run even if an earlier one failed
 * (cf. BullMQ's close()); runMain, used by every main.ts, handles SIGTERM/SIGINT.
 */
import type { Logger } from './logger.js';

export interface Closable {
  close(): Promise<void>;
}

/**
 * Set by `npm start` (scripts/start.ts) in each service's environment: its own pid. A Ctrl-C in a
 * terminal reaches the whole foreground process group, so `npm start` and every service get the
 * SIGINT, and `npm start` answers it with a SIGTERM to each service. A service whose parent is still
 * that process therefore leaves SIGINT to it: taking it too made the SIGTERM a second signal, which
 * cut every drain short. Once the parent is gone (the service was re-parented), SIGINT stops the
 * service as always.
 */
export const SUPERVISOR_ENV = 'POSTMASTER_SUPERVISOR_PID';

/** A SIGINT that the supervisor which started this process will follow with a SIGTERM of its own. */
const leftToSupervisor = (signal: NodeJS.Signals): boolean => signal === 'SIGINT' && process.env[SUPERVISOR_ENV] === String(process.ppid);

export async function runSteps(log: Logger, steps: Array<[string, () => Promise<unknown> | unknown]>): Promise<void> {
  for (const [name, fn] of steps) {
    try {
      await fn();
    } catch (err) {
      log.error({ err: (err as Error)?.message, step: name }, 'shutdown step failed');
    }
  }
}

/**
 * Runs a service's start-up, then serves until SIGTERM/SIGINT: the first signal closes the service
 * (its `close()` steps) and exits 0, a second exits at once. Under `npm start` a SIGINT is left to
 * it (SUPERVISOR_ENV), which sends SIGTERM: one Ctrl-C, one graceful close; another, an exit at
 * once. A signal that arrives while the service is still starting (a pod stopped during a rollout, Ctrl-C right after `npm start`) is held until
 * the start-up is done, then closes it the same way, instead of killing the process mid-start. A
 * failed start-up (broker unreachable, plugin missing, bad config) ends the process with its
 * one-sentence message instead of a stack trace.
 */
export async function runMain(start: () => Promise<{ close(): Promise<void>; log: Logger }>): Promise<void> {
  let svc: { close(): Promise<void>; log: Logger } | null = null;
  let pending: NodeJS.Signals | null = null;
  let stopping = false;
  const stop = (s: { close(): Promise<void>; log: Logger }, signal: NodeJS.Signals) => {
    stopping = true;
    s.log.info({ signal }, 'shutting down');
    s.close().then(
      () => process.exit(0),
      (err) => {
        s.log.error({ err: (err as Error)?.message }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (leftToSupervisor(signal)) {
      svc?.log.debug({ signal }, 'signal left to npm start, which stops this service with SIGTERM');
      return;
    }
    if (stopping || pending) {
      if (svc) svc.log.warn({ signal }, 'second signal: exiting now');
      else console.error(`postmaster: ${signal} again while starting: exiting now`);
      process.exit(1);
    }
    if (svc) stop(svc, signal);
    else pending = signal; // still starting: stop once the start-up is done
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    svc = await start();
  } catch (err) {
    console.error(`postmaster: ${(err as Error)?.message ?? String(err)}`);
    process.exit(1);
  }
  const running = svc;
  // A rejection nobody handled means some work's outcome was lost: the process may now be in a
  // state no code path expects. Say so and exit; the supervisor (Kubernetes, npm start) restarts
  // it, and the broker redelivers whatever it had not acked.
  process.on('unhandledRejection', (reason) => {
    const err = reason as Error;
    running.log.fatal({ err: err?.message ?? String(reason), stack: err?.stack }, 'unhandled rejection: exiting');
    process.exit(70);
  });
  if (pending) stop(running, pending);
}
