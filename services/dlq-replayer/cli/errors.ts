/**
 * How a CLI command fails: one line on stderr and an exit code (docs/DLQ.md, "Exit codes"). Kept
 * apart from the commands so that what runs before anything connects loads no client library.
 */
import { formatDuration } from '../filter.js';

/** The exit code of a command that could not reach RabbitMQ or Redis within the deadline. */
export const UNREACHABLE = 4;

/**
 * An error the CLI reports in one line, with its exit code (1 failed, 2 refused/usage, 3 DLQ busy,
 * 4 unreachable).
 */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** `what` did not answer within the deadline; `cause` is the last error of the attempts. */
export function unreachable(what: string, timeoutMs: number, cause: string | undefined): CliError {
  return new CliError(`could not connect to ${what} within ${formatDuration(timeoutMs)}${cause ? ` (last error: ${cause})` : ''}`, UNREACHABLE);
}
