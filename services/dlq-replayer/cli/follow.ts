/**
 * `--wait`: follows a job until it ends, with a progress bar on a terminal and one plain line per
 * change (at most one a second) otherwise. Progress goes to stderr; stdout keeps the answer.
 */
import cliProgress from 'cli-progress';
import { findJob, isFinalState, viewJob, type JobView } from '../jobs.js';
import { sleep } from '../throttle.js';
import { CliError, type CliContext } from './context.js';

const POLL_MS = 300;
const PLAIN_EVERY_MS = 1000;

function line(v: JobView): string {
  const p = v.progress;
  const did = v.action === 'purge' ? `${p.purged} purged` : `${p.replayed} replayed`;
  const wait = p.waiting ? `, waiting for ${p.waiting === 'rate' ? 'the rate limit' : 'the live lanes to drain'}` : '';
  return `job ${v.id} ${v.state} (${p.phase}${wait}): ${p.scanned}/${p.total} gone over, ${p.matched} matched, ${did}, ${p.kept} kept`;
}

interface Display {
  update(v: JobView): void;
  stop(): void;
}

function barDisplay(): Display {
  const bar = new cliProgress.SingleBar(
    { format: '{action} [{bar}] {value}/{total} | {did} | {kept} kept | {status}', stream: process.stderr, hideCursor: true, clearOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  return {
    update(v) {
      const p = v.progress;
      const payload = {
        action: v.action,
        did: v.action === 'purge' ? `${p.purged} purged` : `${p.replayed} replayed`,
        kept: p.kept,
        status: p.waiting ? `waiting: ${p.waiting}` : `${v.state}/${p.phase}`,
      };
      if (!started) bar.start(Math.max(1, p.total), p.scanned, payload);
      started = true;
      bar.setTotal(Math.max(1, p.total, p.scanned));
      bar.update(p.scanned, payload);
    },
    stop: () => started && bar.stop(),
  };
}

function plainDisplay(): Display {
  let last = '';
  let at = 0;
  return {
    update(v) {
      const text = line(v);
      const final = isFinalState(v.state);
      if (text === last || (!final && Date.now() - at < PLAIN_EVERY_MS)) return;
      last = text;
      at = Date.now();
      process.stderr.write(text + '\n');
    },
    stop: () => {},
  };
}

export async function follow(ctx: CliContext, id: string): Promise<JobView> {
  const display = process.stderr.isTTY ? barDisplay() : plainDisplay();
  try {
    for (;;) {
      const job = await findJob(ctx.queue, id);
      if (!job) throw new CliError(`job ${id} is gone (removed or expired)`, 1);
      const view = await viewJob(job);
      display.update(view);
      if (isFinalState(view.state)) return view;
      await sleep(POLL_MS);
    }
  } finally {
    display.stop();
  }
}
