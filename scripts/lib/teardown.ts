/**
 * Steps that undo what was started, run in reverse order, each even if an earlier one failed;
 * `run()` is idempotent. `onSignals()` runs them on Ctrl-C / SIGTERM before exiting.
 */
export class Teardown {
  private readonly steps: Array<[string, () => Promise<unknown>]> = [];
  private running: Promise<void> | null = null;

  add(name: string, fn: () => Promise<unknown>): void {
    this.steps.push([name, fn]);
  }

  run(log: (line: string) => void = (l) => console.error(l)): Promise<void> {
    return (this.running ??= (async () => {
      for (const [name, fn] of this.steps.reverse()) {
        try {
          await fn();
        } catch (err) {
          log(`teardown: ${name} failed: ${(err as Error).message}`);
        }
      }
    })());
  }

  onSignals(log: (line: string) => void = (l) => console.error(l)): void {
    const handler = (signal: NodeJS.Signals) => {
      log(`\n${signal}: tearing down the private infrastructure…`);
      void this.run(log).finally(() => process.exit(130));
    };
    process.once('SIGINT', handler);
    process.once('SIGTERM', handler);
  }
}
