/**
 * Runs work one at a time per key (a user), in the order it was submitted, while different keys run
 * concurrently. This is what lets one shard consumer work on many users at once without reordering
 * any one user's messages.
 */
export class KeySequencer {
  private readonly tails = new Map<string, Promise<void>>();

  get activeKeys(): number {
    return this.tails.size;
  }

  run(key: string, work: () => Promise<void>): Promise<void> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(work, work);
    const tail = next.catch(() => {});
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }
}
