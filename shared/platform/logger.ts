/**
 * pino JSON logs. Phone numbers and message text are redacted at every depth (the walk
 * is shared/platform/redact.ts); a child logger per component carries message id and correlation id.
 */
import { pino, type Logger } from 'pino';
import { redactText, redactValue } from './redact.js';

export type { Logger };

/**
 * Every argument of a log call, redacted before pino sees it: the merge object (or an Error) walked
 * at every depth, the message and its format arguments cleared of phone-like digit runs. pino's own
 * `redact` paths name fixed depths (`*.to` reaches one level), which is why this is a hook. It runs
 * only for lines at an enabled level, and the hot paths log at debug.
 */
function redactArgs(args: unknown[]): unknown[] {
  const [first, ...rest] = args;
  const tail = rest.map((a) => (typeof a === 'string' ? redactText(a) : redactValue(a)));
  if (first instanceof Error) {
    // What pino does with an Error first: the error under `err`, its message as the line's msg.
    return [{ err: redactValue(first) }, ...(tail.length > 0 ? tail : [redactText(first.message)])];
  }
  if (typeof first === 'string') return [redactText(first), ...tail];
  return [first !== null && typeof first === 'object' ? redactValue(first) : first, ...tail];
}

export function createLogger(opts: { level: string; service: string; replica?: string }, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: { service: opts.service, ...(opts.replica ? { replica: opts.replica } : {}) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, redactArgs(args) as Parameters<typeof method>);
      },
    },
    // The hook has serialised Errors already (redacted); pino's own err serializer would take the
    // plain object for an error again and name its type "Object".
    serializers: { err: (e: unknown) => e },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  const root = destination ? pino(options, destination) : pino(options);
  // Children are made with Object.create(parent), so every descendant inherits this child().
  const child = root.child;
  root.child = function (this: Logger, bindings, childOptions) {
    return child.call(this, redactValue(bindings) as typeof bindings, childOptions);
  } as typeof root.child;
  return root;
}

const LEVELS: ReadonlySet<string> = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace']);
const noop = (): void => {};

/**
 * `parent.child(bindings)`, made only when a line is logged at an enabled level. The stage workers
 * want one per delivery (message id, correlation id, lane on every line), but most deliveries log
 * nothing, and pino's `child()` serialises its bindings through the redaction at once: in the
 * workers' allocation profiles that was the largest single site (8–12 % of all bytes allocated;
 * docs/BENCHMARKS.md). Calls at a disabled level return at once without making the child.
 */
export function lazyChild(parent: Logger, bindings: Record<string, unknown>): Logger {
  let made: Logger | null = null;
  const real = (): Logger => (made ??= parent.child(bindings));
  return new Proxy({} as Logger, {
    get(_target, prop) {
      if (made === null && typeof prop === 'string') {
        if (LEVELS.has(prop) && !parent.isLevelEnabled(prop)) return noop;
        if (prop === 'isLevelEnabled' || prop === 'level') {
          const v = Reflect.get(parent, prop, parent);
          return typeof v === 'function' ? v.bind(parent) : v;
        }
      }
      const r = real();
      const v = Reflect.get(r, prop, r);
      return typeof v === 'function' ? v.bind(r) : v;
    },
  });
}

/** A logger that writes nothing (tests that run many services in-process). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

const OUTAGE_LOG_EVERY_MS = 60_000;

/**
 * A listener for errors that come as a stream while something is away — during a Redis outage a
 * client re-emits one per reconnect attempt, every 2 s for as long as it lasts: the first is logged
 * at warn, the next ones once a minute at most (`errors`: how many since the line before);
 * `recovered()` (the client's 'ready') ends the episode with one info line giving their number, and
 * the next error is logged at once. (An error that no reconnect follows, a timed-out command, thus
 * mutes the next outage for a minute at most.) `what` names the component in both lines.
 */
export function outageLog(log: Logger, what: string): { error: (err: Error) => void; recovered: () => void } {
  let errors = 0;
  let unlogged = 0;
  let loggedAt = -Infinity;
  return {
    error(err) {
      errors++;
      unlogged++;
      if (Date.now() - loggedAt < OUTAGE_LOG_EVERY_MS) return;
      log.warn({ err: err.message, errors: unlogged }, `${what}: error; until it recovers, one such line a minute at most`);
      loggedAt = Date.now();
      unlogged = 0;
    },
    recovered() {
      if (errors > 0) log.info({ errors }, `${what}: recovered`);
      errors = unlogged = 0;
      loggedAt = -Infinity;
    },
  };
}

/**
 * outageLog wired to its sources: `errors`' 'error' events are the outage's errors (a Redis
 * client, or a BullMQ queue or worker that re-emits its connection's), and `ready`'s 'ready' event
 * (the connection underneath: the client itself, or the one the queue or worker runs on) ends it.
 */
export function logOutages(
  log: Logger,
  what: string,
  errors: { on(event: 'error', fn: (err: Error) => void): unknown },
  ready: { on(event: 'ready', fn: () => void): unknown },
): void {
  const outage = outageLog(log, what);
  errors.on('error', outage.error);
  ready.on('ready', outage.recovered);
}
