import { Writable } from 'node:stream';
import { UserError } from '../util/errors.ts';
import { GrowableFloat64, GrowableInt32, GrowableUint8, type Column } from './columns.ts';

export type FieldKind = 'float8' | 'text' | 'raw'; // raw: text kept as is (ids for output_table)

// PostgreSQL binary COPY: an 11-byte signature, int32 flags, int32 header-extension length,
// then per tuple an int16 field count and per field an int32 length (-1 = NULL) and the bytes;
// a field count of -1 ends the stream. All integers and float8 are big-endian.
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * A Writable that parses a binary COPY stream straight into column arrays: float8 fields into
 * a Float64Array (plus a NULL mask), text fields into dictionary codes.
 */
export class BinaryCopyParser extends Writable {
  rows = 0;
  private readonly kinds: FieldKind[];
  private values: (GrowableFloat64 | null)[];
  private nulls: (GrowableUint8 | null)[];
  private codes: (GrowableInt32 | null)[];
  private batchRows = 0; // rows since the last batch was handed over (streaming mode)
  private readonly dicts: (Map<string, number> | null)[];
  private readonly cats: ((string | null)[] | null)[];
  private readonly nullCode: number[];
  private readonly raws: ((string | null)[] | null)[];
  private pending: Buffer | null = null;
  private headerDone = false;
  private ended = false;

  constructor(
    private readonly names: string[],
    kinds: FieldKind[],
    private readonly budget?: { maxBytes: number; budgetLabel: string },
    /** Streaming mode: every `rows` rows the columns are handed to `onBatch` and start anew. */
    private readonly batch?: { rows: number; onBatch: (columns: Column[], rows: number) => void },
  ) {
    super();
    this.kinds = kinds;
    this.values = kinds.map((k) => (k === 'float8' ? new GrowableFloat64() : null));
    this.nulls = kinds.map((k) => (k === 'float8' ? new GrowableUint8() : null));
    this.codes = kinds.map((k) => (k === 'text' ? new GrowableInt32() : null));
    this.dicts = kinds.map((k) => (k === 'text' ? new Map() : null));
    this.cats = kinds.map((k) => (k === 'text' ? [] : null));
    this.nullCode = kinds.map(() => -1);
    this.raws = kinds.map((k) => (k === 'raw' ? [] : null));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    try {
      const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
      const used = this.parse(buf);
      if (this.budget) this.checkBudget(this.budget);
      this.pending = used < buf.length ? buf.subarray(used) : null;
      // Keep the leftover small and independent of the (possibly large) concatenated buffer.
      if (this.pending && this.pending.length < 65536) this.pending = Buffer.from(this.pending);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Parses as many complete tuples as `buf` holds; returns the number of bytes consumed. */
  private parse(buf: Buffer): number {
    let pos = 0;
    if (!this.headerDone) {
      if (buf.length < 19) return 0;
      if (!buf.subarray(0, 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream');
      const ext = buf.readInt32BE(15);
      if (buf.length < 19 + ext) return 0;
      pos = 19 + ext;
      this.headerDone = true;
    }
    const nf = this.kinds.length;
    for (;;) {
      if (this.ended || buf.length - pos < 2) return pos;
      const count = buf.readInt16BE(pos);
      if (count === -1) {
        this.ended = true;
        return buf.length;
      }
      if (count !== nf) throw new Error(`binary COPY: expected ${nf} fields, got ${count}`);
      // Check the whole tuple is present before consuming any of it.
      let p = pos + 2;
      for (let f = 0; f < nf; f++) {
        if (buf.length - p < 4) return pos;
        const len = buf.readInt32BE(p);
        p += 4 + (len > 0 ? len : 0);
        if (p > buf.length) return pos;
      }
      p = pos + 2;
      for (let f = 0; f < nf; f++) {
        const len = buf.readInt32BE(p);
        p += 4;
        if (this.kinds[f] === 'raw') {
          this.raws[f]!.push(len === -1 ? null : buf.toString('utf8', p, p + len));
        } else if (this.kinds[f] === 'float8') {
          if (len === -1) {
            this.values[f]!.push(0);
            this.nulls[f]!.push(1);
          } else {
            this.values[f]!.push(buf.readDoubleBE(p));
            this.nulls[f]!.push(0);
          }
        } else {
          let code: number;
          if (len === -1) {
            if (this.nullCode[f]! < 0) {
              this.nullCode[f] = this.cats[f]!.length;
              this.cats[f]!.push(null);
            }
            code = this.nullCode[f]!;
          } else {
            const s = buf.toString('utf8', p, p + len);
            const dict = this.dicts[f]!;
            let c = dict.get(s);
            if (c === undefined) {
              c = this.cats[f]!.length;
              dict.set(s, c);
              this.cats[f]!.push(s);
            }
            code = c;
          }
          this.codes[f]!.push(code);
        }
        if (len > 0) p += len;
      }
      pos = p;
      this.rows++;
      if (this.batch && ++this.batchRows === this.batch.rows) this.flushBatch();
    }
  }

  override _final(callback: (err?: Error | null) => void): void {
    try {
      if (this.batch && this.batchRows > 0) this.flushBatch();
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Hands the rows since the last batch to onBatch; dictionaries (category codes) carry on. */
  private flushBatch(): void {
    const rows = this.batchRows;
    const columns = this.columns();
    this.values = this.kinds.map((k) => (k === 'float8' ? new GrowableFloat64() : null));
    this.nulls = this.kinds.map((k) => (k === 'float8' ? new GrowableUint8() : null));
    this.codes = this.kinds.map((k) => (k === 'text' ? new GrowableInt32() : null));
    this.batchRows = 0;
    this.batch!.onBatch(columns, rows);
  }

  /**
   * Bytes the training set will need once loaded and expanded to model space: the column arrays
   * (which may double while growing) plus the n x dims float64 matrix the model trains on.
   */
  estimatedBytes(): number {
    let perRow = 0;
    let dims = 0;
    this.kinds.forEach((k, f) => {
      if (k === 'raw') {
        perRow += 64; // a JS string per value: ids are short
      } else if (k === 'float8') {
        perRow += 2 * 9;
        dims += 1;
      } else {
        perRow += 2 * 4;
        dims += Math.max(1, this.cats[f]!.length);
      }
    });
    return this.rows * (perRow + 8 * dims);
  }

  /** Set when the parser stopped the stream itself (the COPY then fails with a less useful error). */
  failure: UserError | null = null;

  private checkBudget(budget: { maxBytes: number; budgetLabel: string }): void {
    const need = this.estimatedBytes();
    if (need <= budget.maxBytes) return;
    throw (this.failure = new UserError(
      `the training data needs more than ${Math.round(need / 2 ** 20)} MB (${this.rows} rows read so far), over the sidecar's memory budget of ${budget.budgetLabel} (--max-memory); sample the query (e.g. TABLESAMPLE SYSTEM (10)) or start the sidecar with a larger --max-memory`,
    ));
  }

  /** Distinct values seen so far in a text column (to stop early on too many categories). */
  categoryCount(field: number): number {
    return this.cats[field]?.length ?? 0;
  }

  /** Raw text columns, by field position. */
  rawColumn(field: number): (string | null)[] {
    return this.raws[field] ?? [];
  }

  /** The feature columns (raw text columns are read with rawColumn). */
  columns(): Column[] {
    const out: Column[] = [];
    this.kinds.forEach((k, f) => {
      if (k === 'float8') out.push({ kind: 'numeric', name: this.names[f]!, values: this.values[f]!.finish(), nulls: this.nulls[f]!.finish() });
      else if (k === 'text') out.push({ kind: 'categorical', name: this.names[f]!, codes: this.codes[f]!.finish(), categories: this.cats[f]! });
    });
    return out;
  }

}
