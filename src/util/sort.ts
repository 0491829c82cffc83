// Ascending sort of finite float64 values by LSD radix on their bits (four 16-bit digits):
// several times faster than Float64Array.prototype.sort, which compares in generic code. Tree binning sorts one sample per feature per model, and auto trains several.

/** Buffers one caller reuses from sort to sort (fresh memory is slow to touch here). */
export class SortScratch {
  a = new Uint32Array(0);
  b = new Uint32Array(0);
  readonly count = new Uint32Array(65536);
  take(n: number): [Uint32Array, Uint32Array] {
    if (this.a.length < 2 * n) {
      this.a = new Uint32Array(2 * n);
      this.b = new Uint32Array(2 * n);
    }
    return [this.a.subarray(0, 2 * n), this.b.subarray(0, 2 * n)];
  }
}

/**
 * A sorted copy of `values` (finite numbers; -0 sorts before 0). With `scratch`, the result
 * lives in the scratch's memory: valid until its next use.
 */
export function sortedCopy(values: Float64Array, scratch?: SortScratch): Float64Array {
  const n = values.length;
  if (n < 512) return Float64Array.from(values).sort();
  // Order-preserving keys: flip every bit of negatives, only the sign bit of the others.
  let [keys, other] = scratch ? scratch.take(n) : [new Uint32Array(2 * n), new Uint32Array(2 * n)];
  new Float64Array(keys.buffer, keys.byteOffset, n).set(values);
  for (let i = 0; i < n; i++) {
    const hi = keys[2 * i + 1]!;
    if (hi & 0x80000000) {
      keys[2 * i] = ~keys[2 * i]! >>> 0;
      keys[2 * i + 1] = ~hi >>> 0;
    } else keys[2 * i + 1] = (hi | 0x80000000) >>> 0;
  }
  const count = scratch?.count ?? new Uint32Array(65536);
  for (let digit = 0; digit < 4; digit++) {
    const word = digit >> 1; // little-endian: word 0 holds the low 32 bits
    const shift = (digit & 1) * 16;
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[2 * i + word]! >>> shift) & 0xffff]++;
    if (count[(keys[word]! >>> shift) & 0xffff] === n) continue; // every key has this digit
    for (let b = 0, sum = 0; b < 65536; b++) {
      const c = count[b]!;
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const at = 2 * count[(keys[2 * i + word]! >>> shift) & 0xffff]++;
      other[at] = keys[2 * i]!;
      other[at + 1] = keys[2 * i + 1]!;
    }
    const t = keys;
    keys = other;
    other = t;
  }
  for (let i = 0; i < n; i++) {
    const hi = keys[2 * i + 1]!;
    if (hi & 0x80000000) keys[2 * i + 1] = (hi & 0x7fffffff) >>> 0;
    else {
      keys[2 * i] = ~keys[2 * i]! >>> 0;
      keys[2 * i + 1] = ~hi >>> 0;
    }
  }
  return new Float64Array(keys.buffer, keys.byteOffset, n);
}
