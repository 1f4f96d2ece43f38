/**
 * The setup most test files share, as mocha hooks: `before` creates the file's own vhost and Redis
 * key prefix and starts what it asks for, `after` undoes it all (what was deferred in reverse order,
 * then the fleet, then the isolation; each step even if an earlier one failed, and the first failure
 * fails the hook). Call it in a `describe` body; its fields are set once the `before` has run.
 *
 *     const t = useFleet('sender-tp', { senders: 3 });
 *     it('…', async () => { await t.fleet.send(…); });
 */
import { Teardown } from '../../scripts/lib/teardown.js';
import { startFleet, type Fleet, type FleetOptions } from './fleet.js';
import { isolate, type Isolation } from './isolation.js';

export interface IsolationHook {
  readonly iso: Isolation;
  /** Runs `fn` in the `after`, before what was set up earlier (the fleet, the isolation) goes. */
  defer(what: string, fn: () => Promise<unknown>): void;
}

export interface FleetHook extends IsolationHook {
  readonly fleet: Fleet;
}

/** Options known when the file is loaded, or computed in the `before` (a bot started first, …). */
export type FleetSetup = FleetOptions | ((iso: Isolation) => FleetOptions | Promise<FleetOptions>);

/** An isolated vhost and Redis prefix for the enclosing `describe`, removed after it. */
export function useIsolation(name: string): IsolationHook {
  const teardown = new Teardown();
  let iso: Isolation | undefined;
  before(async () => {
    iso = await isolate(name);
    const made = iso;
    teardown.add(`remove ${made.vhost}`, () => made.cleanup());
  });
  after(async () => {
    const failures: string[] = [];
    await teardown.run((line) => failures.push(line));
    if (failures.length) throw new Error(failures.join('; '));
  });
  return {
    get iso() {
      return ready(iso, 'isolation');
    },
    defer: (what, fn) => teardown.add(what, fn),
  };
}

/** `useIsolation` plus the in-process fleet of test/support/fleet.ts, closed before the isolation goes. */
export function useFleet(name: string, setup: FleetSetup = {}): FleetHook {
  const hook = useIsolation(name);
  let fleet: Fleet | undefined;
  before(async () => {
    const opts = typeof setup === 'function' ? await setup(hook.iso) : setup;
    const started = await startFleet(hook.iso, opts);
    fleet = started;
    hook.defer('close the fleet', () => started.close());
  });
  return {
    get iso() {
      return hook.iso;
    },
    get fleet() {
      return ready(fleet, 'fleet');
    },
    defer: hook.defer,
  };
}

function ready<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`the ${what} is set up in a before hook: read it inside hooks and tests, not in the describe body`);
  return value;
}
