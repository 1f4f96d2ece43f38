/**
 * pino JSON logs. Phone numbers and message text are redacted (DESIGN §9); a child logger per
 * component carries message id and correlation id.
 */
import { pino, type Logger } from 'pino';

export type { Logger };

const REDACT = [
  'to', '*.to', 'user', '*.user', 'wa_id', '*.wa_id', 'text', '*.text', 'payload', '*.payload',
  'body', '*.body', 'authorization', '*.authorization', 'headers.authorization',
];

export function createLogger(opts: { level: string; service: string; replica?: string }, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: opts.level,
    base: { service: opts.service, ...(opts.replica ? { replica: opts.replica } : {}) },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return destination ? pino(options, destination) : pino(options);
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
