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

export function createLogger(opts: { level: string; service: string; replica?: string }): Logger {
  return pino({
    level: opts.level,
    base: { service: opts.service, ...(opts.replica ? { replica: opts.replica } : {}) },
    redact: { paths: REDACT, censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that writes nothing (tests that run many services in-process). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
