/**
 * Urgent first inside one replica. A replica that consumes both lanes runs an urgent delivery on
 * the same event loop, Redis connection and CPU as up to a full prefetch of ordered ones (1,024
 * with 16 shards), and each of the urgent message's awaits waits behind what those queued: under a
 * backlog, most of its latency.
 *
 * So while an urgent delivery is in flight the gate is *closed*: ordered work does not start new
 * steps (the stage worker holds each ordered delivery before each of its steps; the dispatcher
 * before its publish; the sender before its provider slot's work and before its `sent` record);
 * what is already in Redis or on the wire finishes, and the loop is then the urgent message's. The
 * gate opens when no urgent delivery is in flight, and the held steps go on RELEASE_BATCH per turn.
 *
 * Ordered lanes are never starved: a hold lasts at most `maxHoldMs`; then the gate stays open for
 * as long again, whatever urgent traffic there is, before it may close once more — so a stream of
 * urgent messages takes at most half of a replica's time from its ordered lanes (and a replica that
 * must not give that up runs with URGENT_HOLD_MS=0, or beside dedicated urgent replicas).
 */
/** Held steps released per turn of the event loop when the gate opens. */
const RELEASE_BATCH = 32;

export class UrgentFirst {
  private inFlight = 0;
  private closed = false;
  /** Not closing again before this time (ms): the open half of a hold that ran its full length. */
  private openUntil = 0;
  private waiters: Array<() => void> = [];
  private timer: NodeJS.Timeout | null = null;
  private closedAt = 0;
  private draining: NodeJS.Immediate | null = null;

  /** `onHeld` is told how long each hold lasted (ms), when it ends. */
  constructor(
    private maxHoldMs: number,
    private readonly onHeld: (ms: number) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  /** An urgent delivery starts; call the returned function (once) when it is settled. */
  begin(): () => void {
    this.inFlight++;
    if (this.inFlight === 1) this.close();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      if (--this.inFlight === 0) this.open(false);
    };
  }

  /** Null when ordered work may go on now; otherwise resolves when it may (FIFO). */
  hold(): Promise<void> | null {
    if (!this.closed && this.waiters.length === 0) return null;
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Whether ordered work is being held (for tests and metrics). */
  holding(): boolean {
    return this.closed;
  }

  private close(): void {
    if (this.maxHoldMs <= 0 || this.closed || this.timer) return;
    const wait = this.openUntil - this.now();
    if (wait > 0) {
      // The open half of the last full hold: close when it ends, if urgent work is still in flight.
      this.timer = setTimeout(() => {
        this.timer = null;
        if (this.inFlight > 0) this.close();
      }, wait);
      this.timer.unref();
      return;
    }
    this.closed = true;
    this.closedAt = this.now();
    this.timer = setTimeout(() => {
      this.timer = null;
      this.open(true);
    }, this.maxHoldMs);
    this.timer.unref();
  }

  private open(expired: boolean): void {
    if (this.timer && !expired) {
      clearTimeout(this.timer);
      this.timer = null;
    }
    if (!this.closed) return;
    this.closed = false;
    this.onHeld(this.now() - this.closedAt);
    this.drain();
    if (expired) {
      this.openUntil = this.now() + this.maxHoldMs;
      if (this.inFlight > 0) this.close();
    }
  }

  /**
   * Lets the held work go RELEASE_BATCH at a time, one batch per turn of the event loop: released
   * all at once, a full prefetch of deliveries would run its next steps in one burst, and an urgent
   * message arriving right then would wait behind all of it. Stops when the gate closes again.
   */
  private drain(): void {
    if (this.closed || this.draining) return;
    const batch = this.waiters.splice(0, RELEASE_BATCH);
    for (const w of batch) w();
    if (this.waiters.length === 0) return;
    this.draining = setImmediate(() => {
      this.draining = null;
      this.drain();
    });
  }

  /** Releases every held waiter for good (the worker is closing). */
  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    if (this.draining) clearImmediate(this.draining);
    this.draining = null;
    this.maxHoldMs = 0;
    this.closed = false;
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }
}
