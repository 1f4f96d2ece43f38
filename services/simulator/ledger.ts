/**
 * The simulator's record of every send request it answered, in arrival order: the oracle that tests
 * and benchmarks read. Stored column-wise (typed arrays plus interned recipients and types) so a
 * benchmark can keep a million entries in well under 100 MB; `wamid`s are derived from the sequence
 * number instead of stored, and request bodies are kept only when asked to.
 */
export interface LedgerEntry {
  seq: number;
  /** The business number the send came from (empty in records built without one). */
  phoneNumberId: string;
  receivedAt: number;
  to: string;
  type: string;
  id: string | null;
  wamid: string | null;
  status: number;
  code: number | null;
  body: unknown;
}

export interface LedgerRecord {
  /** The business number the send came from (absent in records built by hand). */
  phoneNumberId?: string;
  receivedAt: number;
  to: string;
  type: string;
  id: string | null;
  status: number;
  code: number | null;
  body: unknown;
}

export interface LedgerFilter {
  to?: string;
  /** true: 2xx answers only; false: everything else. */
  accepted?: boolean;
  /** Only entries with `seq` greater than this (paging). */
  after?: number;
  limit?: number;
}

export interface LedgerStats {
  received: number;
  accepted: number;
  rejected: number;
  /** Error codes answered (including failures reported later by webhook), by code. */
  byCode: Record<string, number>;
  byStatus: Record<string, number>;
  /** Accepted entries whose `id` (biz_opaque_callback_data) had already been accepted before. */
  duplicates: number;
}

const NO_CODE = -1;
const INITIAL_CAPACITY = 1024;

/** Maps strings to small integers so each entry stores 4 bytes instead of a string pointer. */
class Interner {
  private readonly index = new Map<string, number>();
  readonly values: string[] = [];
  intern(value: string): number {
    let i = this.index.get(value);
    if (i === undefined) {
      i = this.values.length;
      this.values.push(value);
      this.index.set(value, i);
    }
    return i;
  }
  lookup(value: string): number | undefined {
    return this.index.get(value);
  }
}

const isAccepted = (status: number): boolean => status >= 200 && status < 300;

export class Ledger {
  private size = 0;
  private receivedAt = new Float64Array(INITIAL_CAPACITY);
  private status = new Uint16Array(INITIAL_CAPACITY);
  private code = new Int32Array(INITIAL_CAPACITY);
  private toIndex = new Uint32Array(INITIAL_CAPACITY);
  private typeIndex = new Uint32Array(INITIAL_CAPACITY);
  private numberIndex = new Uint32Array(INITIAL_CAPACITY);
  private ids: Array<string | null> = [];
  private numbers = new Interner();
  private bodies: unknown[] = [];
  private recipients = new Interner();
  private types = new Interner();
  private acceptedIds = new Set<string>();
  private counts = { accepted: 0, duplicates: 0 };
  private byCode = new Map<number, number>();
  private byStatus = new Map<number, number>();
  private generation = 0;

  /**
   * @param keepBodies store each request body (tests); false keeps only the compact columns (benchmarks).
   * @param wamidPrefix makes wamids unique across simulator instances.
   */
  constructor(
    private readonly keepBodies: boolean,
    private readonly wamidPrefix: string,
  ) {}

  get length(): number {
    return this.size;
  }

  /** Records an answered request; returns its sequence number (1-based, arrival order). */
  append(record: LedgerRecord): number {
    if (this.size === this.receivedAt.length) this.grow();
    const i = this.size++;
    this.receivedAt[i] = record.receivedAt;
    this.status[i] = record.status;
    this.code[i] = record.code ?? NO_CODE;
    this.toIndex[i] = this.recipients.intern(record.to);
    this.typeIndex[i] = this.types.intern(record.type);
    this.ids.push(record.id);
    this.numberIndex[i] = this.numbers.intern(record.phoneNumberId ?? '');
    if (this.keepBodies) this.bodies.push(record.body);
    this.count(record);
    return i + 1;
  }

  /** The message id Meta would have returned for entry `seq`; unique per instance and generation. */
  wamid(seq: number): string {
    return 'wamid.' + Buffer.from(`${this.wamidPrefix}:${this.generation}:${seq}`).toString('base64');
  }

  entries(filter: LedgerFilter = {}): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    let to: number | undefined;
    if (filter.to !== undefined) {
      to = this.recipients.lookup(filter.to);
      if (to === undefined) return out;
    }
    const limit = filter.limit ?? Infinity;
    for (let i = Math.max(0, filter.after ?? 0); i < this.size && out.length < limit; i++) {
      if (to !== undefined && this.toIndex[i] !== to) continue;
      if (filter.accepted !== undefined && isAccepted(this.status[i]) !== filter.accepted) continue;
      out.push(this.entry(i));
    }
    return out;
  }

  stats(): LedgerStats {
    return {
      received: this.size,
      accepted: this.counts.accepted,
      rejected: this.size - this.counts.accepted,
      byCode: Object.fromEntries(this.byCode),
      byStatus: Object.fromEntries(this.byStatus),
      duplicates: this.counts.duplicates,
    };
  }

  clear(): void {
    this.size = 0;
    this.receivedAt = new Float64Array(INITIAL_CAPACITY);
    this.status = new Uint16Array(INITIAL_CAPACITY);
    this.code = new Int32Array(INITIAL_CAPACITY);
    this.toIndex = new Uint32Array(INITIAL_CAPACITY);
    this.typeIndex = new Uint32Array(INITIAL_CAPACITY);
    this.ids = [];
    this.numberIndex = new Uint32Array(INITIAL_CAPACITY);
    this.numbers = new Interner();
    this.bodies = [];
    this.recipients = new Interner();
    this.types = new Interner();
    this.acceptedIds = new Set();
    this.counts = { accepted: 0, duplicates: 0 };
    this.byCode.clear();
    this.byStatus.clear();
    // Sequence numbers restart, so wamids move to a new generation to stay unique.
    this.generation++;
  }

  private entry(i: number): LedgerEntry {
    const seq = i + 1;
    const status = this.status[i];
    const code = this.code[i];
    return {
      seq,
      phoneNumberId: this.numbers.values[this.numberIndex[i]],
      receivedAt: this.receivedAt[i],
      to: this.recipients.values[this.toIndex[i]],
      type: this.types.values[this.typeIndex[i]],
      id: this.ids[i],
      wamid: isAccepted(status) ? this.wamid(seq) : null,
      status,
      code: code === NO_CODE ? null : code,
      body: this.keepBodies ? this.bodies[i] : undefined,
    };
  }

  private count(record: LedgerRecord): void {
    this.byStatus.set(record.status, (this.byStatus.get(record.status) ?? 0) + 1);
    if (record.code !== null) this.byCode.set(record.code, (this.byCode.get(record.code) ?? 0) + 1);
    if (!isAccepted(record.status)) return;
    this.counts.accepted++;
    if (record.id === null) return;
    if (this.acceptedIds.has(record.id)) this.counts.duplicates++;
    else this.acceptedIds.add(record.id);
  }

  private grow(): void {
    const capacity = this.receivedAt.length * 2;
    const grown = <T extends Float64Array | Uint16Array | Int32Array | Uint32Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old as never);
      return next;
    };
    this.receivedAt = grown(this.receivedAt, (n) => new Float64Array(n));
    this.status = grown(this.status, (n) => new Uint16Array(n));
    this.code = grown(this.code, (n) => new Int32Array(n));
    this.toIndex = grown(this.toIndex, (n) => new Uint32Array(n));
    this.typeIndex = grown(this.typeIndex, (n) => new Uint32Array(n));
    this.numberIndex = grown(this.numberIndex, (n) => new Uint32Array(n));
  }
}
