#!/usr/bin/env node
/**
 * `postmaster-dlq` (also `npm run dlq -- …`): the operator's tool for the dead-letter queue.
 * See docs/DLQ.md.
 */
import { CommanderError } from 'commander';
import { buildProgram } from './cli/program.js';
import { CliError, UNREACHABLE } from './cli/errors.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander has written it (help, the version, or a usage error); a usage error exits 2.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else {
    process.stderr.write(`postmaster-dlq: ${(err as Error)?.message ?? String(err)}\n`);
    process.exitCode = err instanceof CliError ? err.exitCode : 1;
    // The clients' failed attempts leave sockets behind that they wait seconds for (ioredis gives
    // a dead one 2 s to close); there is nothing to drain.
    if (process.exitCode === UNREACHABLE) process.exit();
  }
}
// Everything is closed by now; should a library leave a handle open, do not hang the shell.
setTimeout(() => process.exit(), 3000).unref();
