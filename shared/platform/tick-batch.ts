/**
 * Coalesces the calls made in one turn of the event loop into one call with all their items: the
 * hot path's Redis work (status records, the send ledger) becomes one script call per HTTP batch or
 * delivery batch instead of one per message. The flush runs on `setImmediate`, after every
 * microtask of the current turn (the deliveries of one socket read, the items of one request);
 * `max` items flush at once. Each caller gets its own item's result, or the batch's error. All the
 * batches of a process flush in the same callback.
 */
export type BatchRun<I, O> = (items: I[]) => Promise<O[]>;

interface Waiter<O> {
  resolve(v: O): void;
  reject(err: unknown): void;
}

/**
 * The batches with items waiting, flushed together by one `setImmediate`: their commands then
 * leave in one write of the client's auto-pipeline (which sends on the next tick after each
 * callback), not one write per batch. On loopback a write is the costly part: the kernel runs the
 * receiving side of TCP inside the sender's call.
 */
const due = new Set<{ flush(): void }>();
let scheduled: NodeJS.Immediate | null = null;

function flushDue(): void {
  scheduled = null;
  const batches = [...due];
  due.clear();
  for (const b of batches) b.flush();
}

export class TickBatch<I, O> {
  private items: I[] = [];
  private waiters: Array<Waiter<O>> = [];

  constructor(
    private readonly run: BatchRun<I, O>,
    private readonly max = 256,
  ) {}

  add(item: I): Promise<O> {
    return new Promise<O>((resolve, reject) => {
      this.items.push(item);
      this.waiters.push({ resolve, reject });
      if (this.items.length >= this.max) this.flush();
      else {
        due.add(this);
        scheduled ??= setImmediate(flushDue);
      }
    });
  }

  /** Runs the waiting items now (the shared tick calls it; `max` items call it at once). */
  flush(): void {
    due.delete(this);
    const items = this.items;
    const waiters = this.waiters;
    if (items.length === 0) return;
    this.items = [];
    this.waiters = [];
    let settled: Promise<O[]>;
    try {
      settled = this.run(items);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      (out) => waiters.forEach((w, i) => (i < out.length ? w.resolve(out[i]) : w.reject(new Error(`batch answered ${out.length} of ${items.length} items`)))),
      (err: unknown) => waiters.forEach((w) => w.reject(err)),
    );
  }
}
