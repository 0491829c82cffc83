/** Adjusted Rand index of two labelings of the same rows (Hubert & Arabie 1985). */
export function adjustedRandIndex(a: Int32Array, b: Int32Array): number {
  const n = a.length;
  const ka = Math.max(...a) + 1;
  const kb = Math.max(...b) + 1;
  const table = new Float64Array(ka * kb);
  for (let i = 0; i < n; i++) table[a[i]! * kb + b[i]!]!++;
  const pairs = (x: number) => (x * (x - 1)) / 2;
  let sumCells = 0;
  for (const c of table) sumCells += pairs(c);
  const rows = new Float64Array(ka);
  const cols = new Float64Array(kb);
  for (let i = 0; i < ka; i++) for (let j = 0; j < kb; j++) {
    rows[i]! += table[i * kb + j]!;
    cols[j]! += table[i * kb + j]!;
  }
  let sumA = 0;
  let sumB = 0;
  for (const r of rows) sumA += pairs(r);
  for (const c of cols) sumB += pairs(c);
  const expected = (sumA * sumB) / pairs(n);
  const max = (sumA + sumB) / 2;
  return max === expected ? 1 : (sumCells - expected) / (max - expected);
}
