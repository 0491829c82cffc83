import type { Ensemble } from './ensemble.ts';
import type { Tree } from './grow.ts';

// Path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2): exact Shapley values of a
// tree's prediction, with "missing" features integrated out along the tree by its covers
// (hessian sums). For each row they add up to the prediction minus the cover-weighted mean
// leaf value. sql/api/explain.sql holds the same algorithm in PL/pgSQL, iterative, for ml_explain_predict;
// this one gives ml_global_explain at training time and is its reference in the tests.

/** The cover-weighted mean of a tree's leaf values (its prediction with every feature missing). */
export function expectedValue(t: Pick<Tree, 'feature' | 'value' | 'cover'>): number {
  let s = 0;
  t.feature.forEach((f, node) => {
    if (f < 0) s += t.value[node]! * t.cover[node]!;
  });
  return s / t.cover[0]!;
}

// The paths live in flat arrays, as in the SHAP package's C++: a node's path (length depth + 1)
// is a copy of its parent's, placed right after it, so a tree of depth D needs
// (D + 1)(D + 2) / 2 elements in all. Per element: feature, zero fraction (share of covers
// along the path through this feature), one fraction (1 if the row follows the path at this
// feature's splits), permutation weight. (Objects per path element: 25x slower.)
let pathD = new Int32Array(0);
let pathZ = new Float64Array(0);
let pathO = new Float64Array(0);
let pathW = new Float64Array(0);

function ensurePath(depth: number): void {
  const size = ((depth + 1) * (depth + 2)) / 2;
  if (pathD.length >= size) return;
  pathD = new Int32Array(size);
  pathZ = new Float64Array(size);
  pathO = new Float64Array(size);
  pathW = new Float64Array(size);
}

const depthOf = new WeakMap<Tree, number>();

function treeDepth(t: Tree): number {
  let depth = depthOf.get(t);
  if (depth === undefined) {
    const at = new Int32Array(t.feature.length);
    depth = 0;
    t.feature.forEach((f, node) => {
      if (f >= 0) at[t.left[node]!] = at[t.right[node]!] = at[node]! + 1;
      depth = Math.max(depth!, at[node]!);
    });
    depthOf.set(t, depth);
  }
  return depth;
}

/** Adds the tree's SHAP values for row x (model space, at x[offset + dim]) into phi (per dimension). */
export function treeShap(t: Tree, x: Float64Array, offset: number, phi: Float64Array): void {
  ensurePath(treeDepth(t));
  recurse(t, x, offset, phi, 0, 0, 0, 1, 1, -1);
}

/**
 * The node's path starts right after its parent's: [parent, parent + depth) holds the parent's
 * `depth` elements, [p, p + depth + 1) this node's (a copy plus itself).
 */
function recurse(t: Tree, x: Float64Array, offset: number, phi: Float64Array, node: number, depth: number, parent: number, pz: number, po: number, pi: number): void {
  const p = parent + depth;
  for (let i = 0; i < depth; i++) {
    pathD[p + i] = pathD[parent + i]!;
    pathZ[p + i] = pathZ[parent + i]!;
    pathO[p + i] = pathO[parent + i]!;
    pathW[p + i] = pathW[parent + i]!;
  }
  extend(p, depth, pz, po, pi);
  const f = t.feature[node]!;
  if (f < 0) {
    const v = t.value[node]!;
    for (let i = 1; i <= depth; i++) phi[pathD[p + i]!] += unwoundSum(p, depth, i) * (pathO[p + i]! - pathZ[p + i]!) * v;
    return;
  }
  const goLeft = x[offset + f]! <= t.threshold[node]!;
  const hot = goLeft ? t.left[node]! : t.right[node]!;
  const cold = goLeft ? t.right[node]! : t.left[node]!;
  let iz = 1;
  let io = 1;
  let length = depth; // the path's last index
  let k = 1;
  while (k <= length && pathD[p + k] !== f) k++;
  if (k <= length) {
    // Split on this feature before: undo that split so this one counts it once.
    iz = pathZ[p + k]!;
    io = pathO[p + k]!;
    unwind(p, length, k);
    length -= 1;
  }
  const cover = t.cover[node]!;
  recurse(t, x, offset, phi, hot, length + 1, p, (iz * t.cover[hot]!) / cover, io, f);
  recurse(t, x, offset, phi, cold, length + 1, p, (iz * t.cover[cold]!) / cover, 0, f);
}

/** Appends (pi, pz, po) to the path at p whose last index is l - 1 (l elements), updating the weights. */
function extend(p: number, l: number, pz: number, po: number, pi: number): void {
  pathD[p + l] = pi;
  pathZ[p + l] = pz;
  pathO[p + l] = po;
  pathW[p + l] = l === 0 ? 1 : 0;
  for (let i = l - 1; i >= 0; i--) {
    pathW[p + i + 1] += (po * pathW[p + i]! * (i + 1)) / (l + 1);
    pathW[p + i] = (pz * pathW[p + i]! * (l - i)) / (l + 1);
  }
}

/** Removes element k from the path at p whose last index is l. */
function unwind(p: number, l: number, k: number): void {
  const one = pathO[p + k]!;
  const zero = pathZ[p + k]!;
  let next = pathW[p + l]!;
  for (let i = l - 1; i >= 0; i--) {
    if (one !== 0) {
      const tmp = pathW[p + i]!;
      pathW[p + i] = (next * (l + 1)) / ((i + 1) * one);
      next = tmp - (pathW[p + i]! * zero * (l - i)) / (l + 1);
    } else {
      pathW[p + i] = (pathW[p + i]! * (l + 1)) / (zero * (l - i));
    }
  }
  for (let i = k; i < l; i++) {
    pathD[p + i] = pathD[p + i + 1]!;
    pathZ[p + i] = pathZ[p + i + 1]!;
    pathO[p + i] = pathO[p + i + 1]!;
  }
}

/** The total permutation weight of the path at p (last index l) with element k unwound. */
function unwoundSum(p: number, l: number, k: number): number {
  const one = pathO[p + k]!;
  const zero = pathZ[p + k]!;
  let next = pathW[p + l]!;
  let total = 0;
  if (one !== 0) {
    for (let i = l - 1; i >= 0; i--) {
      const tmp = next / ((i + 1) * one);
      total += tmp;
      next = pathW[p + i]! - tmp * zero * (l - i);
    }
  } else {
    for (let i = l - 1; i >= 0; i--) total += pathW[p + i]! / (zero * (l - i));
  }
  return total * (l + 1);
}

/** Per margin: the base margin plus every tree's expected value (the SHAP baseline). */
export function ensembleBaseline(m: Ensemble): number[] {
  const out = [...m.base];
  for (const t of m.trees) out[t.group] += expectedValue(t);
  return out;
}

/** SHAP values of one row for margin `group`, per model-space dimension. */
export function ensembleShap(m: Ensemble, x: Float64Array, offset: number, dims: number, group: number): Float64Array {
  const phi = new Float64Array(dims);
  for (const t of m.trees) if (t.group === group) treeShap(t, x, offset, phi);
  return phi;
}

/** The forest as node arrays with 1-based node numbers, as ml.tree_shap (sql/api/explain.sql) reads it. */
export interface FlatForest {
  feature: number[];
  threshold: number[];
  left: number[];
  right: number[];
  value: number[];
  cover: number[];
  roots: number[];
  groups: number[];
  max_depth: number;
}

export function flatten(m: Ensemble): FlatForest {
  const f: FlatForest = { feature: [], threshold: [], left: [], right: [], value: [], cover: [], roots: [], groups: [], max_depth: 0 };
  for (const t of m.trees) {
    const start = f.feature.length; // 0-based position of this tree's node 0
    f.roots.push(start + 1);
    f.groups.push(t.group);
    const depth = new Int32Array(t.feature.length);
    t.feature.forEach((feat, node) => {
      f.feature.push(feat);
      f.threshold.push(feat < 0 ? 0 : t.threshold[node]!);
      f.left.push(feat < 0 ? 0 : start + t.left[node]! + 1);
      f.right.push(feat < 0 ? 0 : start + t.right[node]! + 1);
      f.value.push(t.value[node]!);
      f.cover.push(t.cover[node]!);
      if (feat >= 0) depth[t.left[node]!] = depth[t.right[node]!] = depth[node]! + 1;
      f.max_depth = Math.max(f.max_depth, depth[node]!);
    });
  }
  return f;
}

/** The trees of a flattened forest (flatten's inverse; split gains are not kept). */
export function unflatten(f: FlatForest, base: number[]): Ensemble {
  const trees = f.roots.map((root, t) => {
    const start = root - 1;
    const end = t + 1 < f.roots.length ? f.roots[t + 1]! - 1 : f.feature.length;
    const local = (node: number) => (node === 0 ? -1 : node - 1 - start);
    const tree = { feature: [] as number[], threshold: [] as number[], left: [] as number[], right: [] as number[], value: [] as number[], cover: [] as number[], gain: [] as number[], group: f.groups[t]! };
    for (let i = start; i < end; i++) {
      tree.feature.push(f.feature[i]!);
      tree.threshold.push(f.threshold[i]!);
      tree.left.push(local(f.left[i]!));
      tree.right.push(local(f.right[i]!));
      tree.value.push(f.value[i]!);
      tree.cover.push(f.cover[i]!);
      tree.gain.push(0);
    }
    return tree;
  });
  return { base, trees };
}
