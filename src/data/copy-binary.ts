import { Writable } from 'node:stream';
import { UserError } from '../util/errors.ts';
import { GrowableFloat64, GrowableInt32, GrowableUint8, type Column } from './columns.ts';

export type FieldKind = 'float8' | 'text' | 'raw'; // raw: text kept as is (ids for output_table)

// PostgreSQL binary COPY: an 11-byte signature, int32 flags, int32 header-extension length,
// then per tuple an int16 field count and per field an int32 length (-1 = NULL) and the bytes;
// a field count of -1 ends the stream. All integers and float8 are big-endian.
const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEAD_BYTES = 4096; // enough to finish a cut tuple of ordinary rows
/** The longest value read (a category, an id kept for output_table); longer ones fail the job. */
export const MAX_VALUE_BYTES = 64 * 2 ** 20;

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
  private matrix: Float64Array | null = null; // row-major mode: n x fields, NULL as 0
  private matrixRows = 0; // its capacity in rows
  private readonly dicts: (Map<string, number> | null)[];
  private readonly cats: ((string | null)[] | null)[];
  private readonly nullCode: number[];
  private readonly raws: ((string | null)[] | null)[];
  private pending: Buffer | null = null;
  /** A tuple longer than a chunk or two: its chunks, joined once enough bytes arrived (joining at every chunk was quadratic). */
  private long: { chunks: Buffer[]; bytes: number; need: number } | null = null;
  private headerDone = false;
  private ended = false;

  constructor(
    private readonly names: string[],
    kinds: FieldKind[],
    private readonly budget?: { maxBytes: number; budgetLabel: string },
    /** Streaming mode: every `rows` rows the columns are handed to `onBatch` and start anew. */
    private readonly batch?: { rows: number; onBatch: (columns: Column[], rows: number) => void },
    private readonly expectedRows = 0, // initial capacity of the column arrays
    rowMajor = false, // float8 fields into one row-major matrix in shared memory (see columns())
  ) {
    super();
    this.kinds = kinds;
    if (rowMajor && !batch && kinds.every((k) => k === 'float8')) {
      this.matrixRows = Math.max(1024, Math.min(expectedRows, 1 << 24));
      this.matrix = new Float64Array(new SharedArrayBuffer(this.matrixRows * kinds.length * 8));
    }
    this.values = [];
    this.nulls = [];
    this.codes = [];
    this.newArrays();
    this.dicts = kinds.map((k) => (k === 'text' ? new Map() : null));
    this.cats = kinds.map((k) => (k === 'text' ? [] : null));
    this.nullCode = kinds.map(() => -1);
    this.raws = kinds.map((k) => (k === 'raw' ? [] : null));
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, callback: (err?: Error | null) => void): void {
    try {
      let buf = chunk;
      let start = 0;
      if (this.long) {
        const l = this.long;
        l.chunks.push(chunk);
        l.bytes += chunk.length;
        if (this.budget && l.bytes > this.budget.maxBytes) this.checkBudget(this.budget, l.bytes);
        if (l.bytes < l.need) {
          callback();
          return;
        }
        buf = Buffer.concat(l.chunks, l.bytes);
        this.long = null;
      } else if (this.pending) {
        // Complete the tuple cut at the previous chunk's end with the head of this chunk, rather
        // than copying the whole chunk behind it (that copy was ~10% of reading 1M x 8).
        const head = Buffer.concat([this.pending, chunk.subarray(0, Math.min(chunk.length, HEAD_BYTES))]);
        const used = this.parse(head, 0);
        if (used >= this.pending.length) start = used - this.pending.length;
        else {
          // A tuple longer than the head: behind the pending bytes (of which `used` are parsed) goes the whole chunk.
          buf = Buffer.concat([this.pending, chunk]);
          start = used;
        }
        this.pending = null;
      }
      const used = this.parse(buf, start);
      if (this.budget) this.checkBudget(this.budget);
      this.pending = used < buf.length ? buf.subarray(used) : null;
      if (this.pending && this.headerDone) {
        const need = this.tupleBytesNeeded(this.pending);
        if (need > this.pending.length + HEAD_BYTES) {
          this.long = { chunks: [Buffer.from(this.pending)], bytes: this.pending.length, need };
          this.pending = null;
        }
      }
      // Keep the leftover small and independent of the (possibly large) chunk.
      if (this.pending && this.pending.length < 65536) this.pending = Buffer.from(this.pending);
      callback();
    } catch (err) {
      callback(err as Error);
    }
  }

  /** Parses as many complete tuples as `buf` holds; returns the number of bytes consumed. */
  private parse(buf: Buffer, start: number): number {
    let pos = start;
    if (!this.headerDone) {
      if (buf.length - pos < 19) return pos;
      if (!buf.subarray(pos, pos + 11).equals(SIGNATURE)) throw new Error('not a binary COPY stream');
      const ext = buf.readInt32BE(pos + 15);
      if (buf.length - pos < 19 + ext) return pos;
      pos += 19 + ext;
      this.headerDone = true;
    }
    const nf = this.kinds.length;
    // DataView reads (V8 intrinsics) instead of Buffer.readDoubleBE/readInt32BE, which check
    // bounds and assemble doubles byte by byte.
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.length);
    const end = buf.length;
    for (;;) {
      if (this.ended || end - pos < 2) return pos;
      const count = dv.getInt16(pos);
      if (count === -1) {
        this.ended = true;
        return end;
      }
      if (count !== nf) throw new Error(`binary COPY: expected ${nf} fields, got ${count}`);
      // Check the whole tuple is present before consuming any of it.
      let p = pos + 2;
      for (let f = 0; f < nf; f++) {
        if (end - p < 4) return pos;
        const len = dv.getInt32(p);
        p += 4 + (len > 0 ? len : 0);
        if (p > end) return pos;
      }
      p = pos + 2;
      if (this.matrix) {
        // Row-major mode: every field is float8.
        if (this.rows === this.matrixRows) this.growMatrix();
        const m = this.matrix;
        for (let f = 0, at = this.rows * nf; f < nf; f++, at++) {
          const len = dv.getInt32(p);
          p += 4;
          if (len === -1) this.nulls[f]!.push(1);
          else {
            m[at] = dv.getFloat64(p);
            this.nulls[f]!.push(0);
            p += len;
          }
        }
        pos = p;
        this.rows++;
        continue;
      }
      for (let f = 0; f < nf; f++) {
        const len = dv.getInt32(p);
        p += 4;
        const kind = this.kinds[f];
        if (kind === 'float8') {
          if (len === -1) {
            this.values[f]!.push(0);
            this.nulls[f]!.push(1);
          } else {
            this.values[f]!.push(dv.getFloat64(p));
            this.nulls[f]!.push(0);
          }
        } else if (kind === 'raw') {
          this.raws[f]!.push(len === -1 ? null : buf.toString('utf8', p, p + len));
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

  private growMatrix(): void {
    const next = new Float64Array(new SharedArrayBuffer(this.matrixRows * 2 * this.kinds.length * 8));
    next.set(this.matrix!);
    this.matrix = next;
    this.matrixRows *= 2;
  }

  private newArrays(): void {
    const capacity = Math.max(1024, Math.min(this.expectedRows, 1 << 24)); // reserved, touched as rows come
    this.values = this.kinds.map((k) => (k === 'float8' && !this.matrix ? new GrowableFloat64(capacity) : null));
    this.nulls = this.kinds.map((k) => (k === 'float8' ? new GrowableUint8(capacity) : null));
    this.codes = this.kinds.map((k) => (k === 'text' ? new GrowableInt32(capacity) : null));
  }

  /** Hands the rows since the last batch to onBatch; dictionaries (category codes) carry on. */
  private flushBatch(): void {
    const rows = this.batchRows;
    const columns = this.columns();
    this.newArrays();
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
        perRow += this.matrix ? 9 : 2 * 9; // row-major: the matrix becomes the model-space matrix
        dims += this.matrix ? 0 : 1;
      } else {
        perRow += 2 * 4;
        dims += Math.max(1, this.cats[f]!.length);
      }
    });
    return this.rows * (perRow + 8 * dims);
  }

  /** Set when the parser stopped the stream itself (the COPY then fails with a less useful error). */
  failure: UserError | null = null;

  /**
   * How many bytes the cut tuple at the start of `b` needs before the next of its fields is
   * complete (its length prefixes are read as they arrive); refuses a value over MAX_VALUE_BYTES.
   */
  private tupleBytesNeeded(b: Buffer): number {
    if (b.length < 2) return 2;
    const fields = b.readInt16BE(0);
    let pos = 2;
    for (let f = 0; f < fields; f++) {
      if (pos + 4 > b.length) return pos + 4;
      const len = b.readInt32BE(pos);
      pos += 4;
      if (len > MAX_VALUE_BYTES) {
        throw (this.failure = new UserError(
          `column "${this.names[f] ?? f + 1}" has a value of ${Math.round(len / 2 ** 20)} MB (row ${this.rows + 1}); sqlml reads values up to ${MAX_VALUE_BYTES / 2 ** 20} MB: leave the column out ("exclude") or shorten it in the query`,
        ));
      }
      if (len > 0) pos += len;
      if (pos > b.length) return pos;
    }
    return pos;
  }

  private checkBudget(budget: { maxBytes: number; budgetLabel: string }, pendingBytes = 0): void {
    const need = this.estimatedBytes() + pendingBytes;
    if (need <= budget.maxBytes) return;
    throw (this.failure = new UserError(
      `the training data needs more than ${Math.round(need / 2 ** 20)} MB (${this.rows} rows read so far), over the sidecar's memory budget of ${budget.budgetLabel} (--max-memory); sample the query (e.g. TABLESAMPLE SYSTEM (10)), start the sidecar with a larger --max-memory, or for k-means set "training_mode": "in_database" (each step an aggregate where the rows are) or "batch_size" (e.g. 50000) to stream every row`,
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
      if (k === 'float8' && this.matrix) {
        const nf = this.kinds.length;
        out.push({ kind: 'numeric', name: this.names[f]!, values: this.matrix.subarray(0, this.rows * nf), nulls: this.nulls[f]!.finish(), stride: nf, offset: f });
      } else if (k === 'float8') out.push({ kind: 'numeric', name: this.names[f]!, values: this.values[f]!.finish(), nulls: this.nulls[f]!.finish() });
      else if (k === 'text') out.push({ kind: 'categorical', name: this.names[f]!, codes: this.codes[f]!.finish(), categories: this.cats[f]! });
    });
    return out;
  }

}
