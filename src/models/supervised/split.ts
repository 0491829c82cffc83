import type { Column } from '../../data/columns.ts';
import { UserError } from '../../util/errors.ts';
import type { SplitMethod } from './options.ts';

// BigQuery ML's data_split_method. auto_split: under 500 rows all train; up to 50,000 rows 20%
// evaluation; above, 10,000 evaluation rows. random: a share of the rows chosen by a hash of
// each row's values (and the seed), so the split does not depend on the order the query
// returns rows in (BigQuery hashes the data too). seq: the last share in the order of
// data_split_col (NULLs evaluate). custom: a boolean column, TRUE or NULL = evaluation.

export interface Split {
  train: Uint32Array;
  eval: Uint32Array | null; // null: no evaluation split (metrics are on the training rows)
  method: SplitMethod;
}

export function splitRows(
  method: SplitMethod,
  n: number,
  o: { evalFraction: number; seed: number; columns: Column[]; splitValues?: Float64Array; splitNulls?: Uint8Array; splitColumn?: string | null },
): Split {
  let m = method;
  let fraction = o.evalFraction;
  if (m === 'auto_split') {
    if (n < 500) m = 'no_split';
    else {
      fraction = n <= 50_000 ? 0.2 : 10_000 / n;
      m = 'random';
    }
  }
  const isEval = new Uint8Array(n);
  if (m === 'random') {
    const h = rowHashes(o.columns, n, o.seed);
    const cut = fraction * 2 ** 32;
    for (let i = 0; i < n; i++) isEval[i] = h[i]! < cut ? 1 : 0;
  } else if (m === 'custom') {
    for (let i = 0; i < n; i++) isEval[i] = o.splitValues![i]! !== 0 || o.splitNulls![i]! ? 1 : 0;
  } else if (m === 'seq') {
    // splitValues are the dense ranks of the split column (NULL rows always evaluate).
    const present: number[] = [];
    for (let i = 0; i < n; i++) if (o.splitNulls![i]) isEval[i] = 1;
    else present.push(o.splitValues![i]!);
    present.sort((a, b) => a - b);
    const trainCount = Math.round(present.length * (1 - fraction));
    const cutRank = trainCount > 0 ? present[trainCount - 1]! : -Infinity;
    for (let i = 0; i < n; i++) if (!o.splitNulls![i] && o.splitValues![i]! > cutRank) isEval[i] = 1;
  }
  if (m === 'no_split') return { train: Uint32Array.from({ length: n }, (_, i) => i), eval: null, method: m };
  let evalCount = 0;
  for (let i = 0; i < n; i++) evalCount += isEval[i]!;
  if (evalCount === n) {
    throw new UserError(
      `data_split_method "${method}" left no training rows${o.splitColumn ? ` (column "${o.splitColumn}")` : ''}; lower "data_split_eval_fraction" or use "no_split"`,
    );
  }
  const train = new Uint32Array(n - evalCount);
  const evalRows = new Uint32Array(evalCount);
  for (let i = 0, a = 0, b = 0; i < n; i++) {
    if (isEval[i]) evalRows[b++] = i;
    else train[a++] = i;
  }
  return { train, eval: evalCount > 0 ? evalRows : null, method: m };
}

/** A 32-bit hash of each row's values (features and label), mixed with the seed. */
function rowHashes(columns: Column[], n: number, seed: number): Uint32Array {
  const h = new Uint32Array(n).fill(seed >>> 0);
  const f64 = new Float64Array(1);
  const u32 = new Uint32Array(f64.buffer);
  for (const col of columns) {
    if (col.kind === 'numeric') {
      for (let i = 0; i < n; i++) {
        f64[0] = col.nulls[i] ? NaN : col.values[i]!;
        h[i] = mix(mix(h[i]!, u32[0]!), u32[1]!);
      }
    } else {
      const codeHash = Uint32Array.from(col.categories, (c) => (c === null ? 0x9e3779b9 : stringHash(c)));
      for (let i = 0; i < n; i++) h[i] = mix(h[i]!, codeHash[col.codes[i]!]!);
    }
  }
  for (let i = 0; i < n; i++) h[i] = finalize(h[i]!);
  return h;
}

function mix(h: number, v: number): number {
  let k = Math.imul(v, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) >>> 0;
}

function finalize(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function stringHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}
