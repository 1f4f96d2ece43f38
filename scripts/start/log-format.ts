/**
 * How `npm start` shows its processes' logs. Every service writes pino JSON lines to stdout (what
 * containers and log shippers want); on a terminal the parent turns each into one readable line
 * behind the process's name. The formatting lives here, in the parent, rather than in each service
 * (a pino transport per child): the services run unchanged, as in production; the parent is the
 * one place that knows the process names; and what is not a JSON line (a crash's stack trace on
 * stderr) gets the same prefix.
 */
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';
import { createColors, isColorSupported } from 'colorette';
import pinoPretty from 'pino-pretty';

export type LogFormat = 'pretty' | 'json';

/**
 * `LOG_FORMAT` (json | pretty) when set, else pretty on a terminal and JSON when stdout is a pipe
 * or a file.
 */
export function logFormat(env: NodeJS.ProcessEnv, stdoutIsTty: boolean): LogFormat {
  const v = env.LOG_FORMAT?.trim().toLowerCase();
  if (v === 'json' || v === 'pretty') return v;
  if (v) throw new Error(`LOG_FORMAT must be json or pretty, not "${env.LOG_FORMAT}"`);
  return stdoutIsTty ? 'pretty' : 'json';
}

export interface PrettyOptions {
  /** Colour the prefix and the level (default: when stdout supports it; NO_COLOR, FORCE_COLOR). */
  colorize?: boolean;
  /** Pad the prefix to this many characters, so the lines of all processes align. */
  width?: number;
  /** Which colour of the palette the prefix gets (one per process). */
  colour?: number;
}

const PALETTE = ['cyan', 'magenta', 'green', 'yellow', 'blue', 'red'] as const;

/**
 * A function that turns one output line of the process `name` into one readable line:
 * `[ingress]    22:11:55.123Z INFO: listening {"port":8080}`. Times are UTC (the JSON's are ISO
 * 8601 UTC); `pid`, `hostname`, `service` and `replica` are left out (the prefix says them); an
 * error stays on the line, as JSON, stack included. A line that is not a pino JSON line is kept as
 * it is, behind the prefix.
 */
export function prettyLine(name: string, opts: PrettyOptions = {}): (line: string) => string {
  const colorize = opts.colorize ?? isColorSupported;
  const paint = createColors({ useColor: colorize })[PALETTE[(opts.colour ?? 0) % PALETTE.length]];
  const prefix = paint(`[${name}]`.padEnd((opts.width ?? 0) + 2));
  const pretty = pinoPretty.prettyFactory({
    colorize,
    singleLine: true,
    translateTime: "UTC:HH:MM:ss.l'Z'",
    ignore: 'pid,hostname,service,replica',
    // Not multi-line error blocks: one event, one line.
    errorLikeObjectKeys: [],
  });
  return (line) => {
    const text = line.trimStart().startsWith('{') ? pretty(line).replace(/\n+$/, '') : line;
    return `${prefix} ${text.trimEnd()}`;
  };
}

/** Copies each line of `from` to `to` through `format` (a child's stdout or stderr). */
export function pipeLines(from: Readable, to: Writable, format: (line: string) => string): void {
  createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => {
    if (line.trim()) to.write(format(line) + '\n');
  });
}
