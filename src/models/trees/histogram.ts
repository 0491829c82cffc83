import type { Binned } from './bins.ts';
import { UNROLL_MAX, unroll } from '../../util/unroll.ts';

// The histogram pass of tree growth (grow.ts): per (feature, bin), the sums of the gradient
// pairs of a node's rows, compiled once per histogram layout.

/**
 * (G, H) per (feature, bin) over positions [lo, hi) of rows, added into `hist` (zeroed), or with
 * `remove` taken out of it (a parent's histogram becomes its larger child's). A row's bins are
 * read four at a time as one 32-bit word (30% faster than byte by byte); the padding features'
 * counts land in a pair nobody reads. Compiled per histogram layout (util/unroll.ts): the words
 * of a row and their slots written out (~15% faster than the loops).
 */
export function histogram(data: Binned, rows: Uint32Array, gh: Float64Array, lo: number, hi: number, hist: Float64Array, remove = false): Float64Array {
  const w32 = new Uint32Array(data.bins.buffer, data.bins.byteOffset, data.bins.length >> 2);
  histogramKernels(data.slots)[remove ? 1 : 0]!(w32, rows, gh, lo, hi, hist);
  return hist;
}

type HistogramFn = (w32: Uint32Array, rows: Uint32Array, gh: Float64Array, lo: number, hi: number, hist: Float64Array) => void;
// By layout: the same slots array for every tree of a model (looked up by identity), and by its
// values across models (a long-running sidecar sees many data sets: the last 32 are kept).
const kernelsBySlots = new WeakMap<Int32Array, HistogramFn[]>();
const kernelsByLayout = new Map<string, HistogramFn[]>();

/** The passes (add, remove) for one layout (Binned.slots; the row width is its length). */
function histogramKernels(slots: Int32Array): HistogramFn[] {
  let fns = kernelsBySlots.get(slots);
  if (fns) return fns;
  const key = slots.join(',');
  fns = kernelsByLayout.get(key) ?? [compileHistogram(slots, '+='), compileHistogram(slots, '-=')];
  if (kernelsByLayout.size >= 32) kernelsByLayout.delete(kernelsByLayout.keys().next().value!);
  kernelsByLayout.set(key, fns);
  kernelsBySlots.set(slots, fns);
  return fns;
}

function compileHistogram(slots: Int32Array, op: '+=' | '-='): HistogramFn {
  const words = slots.length >> 2;
  const slot = (q: number, byte: number) => {
    const bin = byte === 0 ? `(w${q} & 255)` : byte === 3 ? `(w${q} >>> 24)` : `((w${q} >>> ${8 * byte}) & 255)`;
    return `b = ${slots[4 * q + byte]} + 2 * ${bin}; hist[b] ${op} g; hist[b + 1] ${op} h;`;
  };
  // Up to UNROLL_MAX words a row written out with the slots as constants; wider rows loop.
  const perRow =
    words <= UNROLL_MAX
      ? `${unroll(words, (q) => `const w${q} = w32[at + ${q}];`)}
         ${unroll(words, (q) => unroll(4, (byte) => slot(q, byte)))}`
      : `for (let q = 0; q < ${words}; q++) {
           const w = w32[at + q];
           for (let byte = 0; byte < 4; byte++) {
             b = slots[4 * q + byte] + 2 * ((w >>> (8 * byte)) & 255); hist[b] ${op} g; hist[b + 1] ${op} h;
           }
         }`;
  const compiled = new Function(
    'w32', 'rows', 'gh', 'lo', 'hi', 'hist', 'slots',
    `let b = 0;
    for (let i = lo; i < hi; i++) {
      const row = rows[i];
      const g = gh[2 * row], h = gh[2 * row + 1];
      const at = row * ${words};
      ${perRow}
    }`,
  ) as (...args: [...Parameters<HistogramFn>, Int32Array]) => void;
  return (w32, rows, gh, lo, hi, hist) => compiled(w32, rows, gh, lo, hi, hist, slots);
}
