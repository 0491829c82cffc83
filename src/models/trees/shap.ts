import type { Ensemble } from './ensemble.ts';
import type { Tree } from './grow.ts';

// Path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2): exact Shapley values of a
// tree's prediction, with "missing" features integrated out along the tree by its covers
// (hessian sums). For each row they add up to the prediction minus the cover-weighted mean
// leaf value. sql/009 holds the same algorithm in PL/pgSQL, iterative, for ml_explain_predict;
// this one gives ml_global_explain at training time and is its reference in the tests.

interface PathElement {
  d: number; // feature (model-space dimension), -1 for the root's placeholder
  z: number; // zero fraction: share of covers along the path through this feature
  o: number; // one fraction: 1 if the row follows the path at this feature's splits
  w: number; // permutation weight
}

/** The cover-weighted mean of a tree's leaf values (its prediction with every feature missing). */
export function expectedValue(t: Pick<Tree, 'feature' | 'value' | 'cover'>): number {
  let s = 0;
  t.feature.forEach((f, node) => {
    if (f < 0) s += t.value[node]! * t.cover[node]!;
  });
  return s / t.cover[0]!;
}

/** Adds the tree's SHAP values for row x (model space, at x[offset + dim]) into phi (per dimension). */
export function treeShap(t: Tree, x: Float64Array, offset: number, phi: Float64Array): void {
  recurse(0, [], 1, 1, -1);

  function recurse(node: number, parent: PathElement[], pz: number, po: number, pi: number): void {
    const m = extend(parent, pz, po, pi);
    const f = t.feature[node]!;
    if (f < 0) {
      for (let i = 1; i < m.length; i++) {
        phi[m[i]!.d] += unwoundSum(m, i) * (m[i]!.o - m[i]!.z) * t.value[node]!;
      }
      return;
    }
    const goLeft = x[offset + f]! <= t.threshold[node]!;
    const hot = goLeft ? t.left[node]! : t.right[node]!;
    const cold = goLeft ? t.right[node]! : t.left[node]!;
    let iz = 1;
    let io = 1;
    let path = m;
    const k = m.findIndex((e) => e.d === f);
    if (k > 0) {
      iz = m[k]!.z;
      io = m[k]!.o;
      path = unwind(m, k);
    }
    const cover = t.cover[node]!;
    recurse(hot, path, (iz * t.cover[hot]!) / cover, io, f);
    recurse(cold, path, (iz * t.cover[cold]!) / cover, 0, f);
  }
}

function extend(parent: PathElement[], pz: number, po: number, pi: number): PathElement[] {
  const m = parent.map((e) => ({ ...e }));
  const l = m.length;
  m.push({ d: pi, z: pz, o: po, w: l === 0 ? 1 : 0 });
  for (let i = l - 1; i >= 0; i--) {
    m[i + 1]!.w += (po * m[i]!.w * (i + 1)) / (l + 1);
    m[i]!.w = (pz * m[i]!.w * (l - i)) / (l + 1);
  }
  return m;
}

function unwind(m: PathElement[], k: number): PathElement[] {
  const l = m.length - 1;
  const { o: one, z: zero } = m[k]!;
  const out = m.map((e) => ({ ...e }));
  let next = out[l]!.w;
  for (let i = l - 1; i >= 0; i--) {
    if (one !== 0) {
      const tmp = out[i]!.w;
      out[i]!.w = (next * (l + 1)) / ((i + 1) * one);
      next = tmp - (out[i]!.w * zero * (l - i)) / (l + 1);
    } else {
      out[i]!.w = (out[i]!.w * (l + 1)) / (zero * (l - i));
    }
  }
  for (let i = k; i < l; i++) {
    out[i]!.d = out[i + 1]!.d;
    out[i]!.z = out[i + 1]!.z;
    out[i]!.o = out[i + 1]!.o;
  }
  out.pop();
  return out;
}

function unwoundSum(m: PathElement[], k: number): number {
  const l = m.length - 1;
  const { o: one, z: zero } = m[k]!;
  let next = m[l]!.w;
  let total = 0;
  if (one !== 0) {
    for (let i = l - 1; i >= 0; i--) {
      const tmp = next / ((i + 1) * one);
      total += tmp;
      next = m[i]!.w - tmp * zero * (l - i);
    }
  } else {
    for (let i = l - 1; i >= 0; i--) total += m[i]!.w / (zero * (l - i));
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

/** The forest as node arrays with 1-based node numbers, as ml.tree_shap (sql/009) reads it. */
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
