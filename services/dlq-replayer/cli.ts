#!/usr/bin/env node
/**
 * `postmaster-dlq` (also `npm run dlq -- …`): the operator's tool for the dead-letter queue.
 * See docs/DLQ.md.
 */
import { buildProgram } from './cli/program.js';
import { CliError } from './cli/context.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`postmaster-dlq: ${(err as Error)?.message ?? String(err)}\n`);
  process.exitCode = err instanceof CliError ? err.exitCode : 1;
}
// Everything is closed by now; should a library leave a handle open, do not hang the shell.
setTimeout(() => process.exit(), 3000).unref();
