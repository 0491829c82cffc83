// Column-wise storage of a training set: one typed array per numeric column, dictionary codes
// per categorical column. No per-row objects.

export interface NumericColumn {
  kind: 'numeric';
  name: string;
  values: Float64Array; // NULL rows hold 0; see nulls
  nulls: Uint8Array; // 1 where the value was NULL
  /**
   * Row-major loading (every column one matrix): row i's value is values[offset + i * stride].
   * Absent: a plain column (offset 0, stride 1).
   */
  stride?: number;
  offset?: number;
}

export interface CategoricalColumn {
  kind: 'categorical';
  name: string;
  codes: Int32Array; // index into categories
  categories: (string | null)[]; // in order of first appearance; null = the NULL category
  /** boolean and date columns: the type a generated function takes them as (others: text). */
  sqlType?: CategoryType;
}

export type CategoryType = 'boolean' | 'date';

export type Column = NumericColumn | CategoricalColumn;

export interface Table {
  rows: number;
  columns: Column[];
}

type TypedArray = Float64Array | Int32Array | Uint8Array;

/** A typed array that doubles its capacity as rows arrive. */
class Growable<T extends TypedArray> {
  data: T;
  length = 0;
  constructor(private readonly make: (n: number) => T, capacity = 1024) {
    this.data = make(capacity);
  }
  push(v: number): void {
    if (this.length === this.data.length) {
      const next = this.make(this.data.length * 2);
      next.set(this.data);
      this.data = next;
    }
    this.data[this.length++] = v;
  }
  /** The filled part: a view when little capacity is wasted, else a trimmed copy. */
  finish(): T {
    if (this.length * 1.25 >= this.data.length) return this.data.subarray(0, this.length) as T;
    return this.data.slice(0, this.length) as T;
  }
}

export class GrowableFloat64 extends Growable<Float64Array> {
  constructor(capacity?: number) {
    super((n) => new Float64Array(n), capacity);
  }
}
export class GrowableInt32 extends Growable<Int32Array> {
  constructor(capacity?: number) {
    super((n) => new Int32Array(n), capacity);
  }
}
export class GrowableUint8 extends Growable<Uint8Array> {
  constructor(capacity?: number) {
    super((n) => new Uint8Array(n), capacity);
  }
}
