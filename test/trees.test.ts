import { describe, expect, it } from 'vitest';
import { binMatrix, binOf } from '../src/models/trees/bins.ts';
import { growForest } from '../src/models/trees/forest.ts';
import { growTree, TreeWork, type Tree, type TreeParams } from '../src/models/trees/grow.ts';
import { binaryGradientsFromExp, binaryLossFromExp, gradients, meanLoss } from '../src/models/supervised/target.ts';
import { Random } from '../src/util/random.ts';

describe('tree growth', () => {
  const n = 12_000;
  const d = 7; // not a multiple of 4: padding bytes in the bin rows
  const rng = new Random(11);
  const X = new Float64Array(n * d);
  for (let i = 0; i < n * d; i++) X[i] = i % d === 6 ? Math.floor(rng.next() * 5) : rng.next() * 10 - 5;
  const train = Uint32Array.from({ length: n - 1000 }, (_, i) => i + 1000);
  const binned = binMatrix(X, n, d, train, 1);
  const g = Float64Array.from({ length: n }, (_, i) => Math.sin(X[i * d]!) + X[i * d + 1]! * 0.1 - (X[i * d + 6]! === 2 ? 1 : 0) + (rng.next() - 0.5));
  const h = Float64Array.from({ length: n }, () => 0.25 + rng.next() * 0.1);

  const gh = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    gh[2 * i] = g[i]!;
    gh[2 * i + 1] = h[i]!;
  }
  const firstRows = Uint32Array.from({ length: 1000 }, (_, i) => i); // not trained on: passengers

  /** The tree, and its leaves with their rows (sorted) as growTree labelled them. */
  const grow = (work: TreeWork, p: TreeParams) => {
    const { tree, leafOf } = growTree(binned, Uint32Array.from(train), gh, p, new Random(5), work, Uint32Array.from(firstRows));
    const leaves = new Map<number, number[]>();
    for (let i = 0; i < n; i++) leaves.set(leafOf[i]!, [...(leaves.get(leafOf[i]!) ?? []), i]);
    return { tree: structuredClone(tree), leaves: [...leaves].sort((a, b) => a[0] - b[0]) };
  };

  /** The leaf a raw row reaches walking the tree on its values (x <= threshold goes left). */
  const walk = (tree: Tree, i: number) => {
    let node = 0;
    while (tree.feature[node]! >= 0) node = X[i * d + tree.feature[node]!]! <= tree.threshold[node]! ? tree.left[node]! : tree.right[node]!;
    return node;
  };

  for (const [name, p] of [
    ['depth 6', { maxDepth: 6, minChildWeight: 1, l1: 0, l2: 1, minSplitLoss: 0, colsampleBynode: 1, learnRate: 0.1 }],
    ['depth 9, l1, a feature sample per node', { maxDepth: 9, minChildWeight: 2, l1: 0.5, l2: 1, minSplitLoss: 0.01, colsampleBynode: 0.7, learnRate: 0.3 }],
  ] as [string, TreeParams][]) {
    it(`${name}: the same tree and leaves in fresh and in reused working memory`, () => {
      const alone = grow(new TreeWork(), p);
      const work = new TreeWork();
      grow(work, { ...p, maxDepth: 3 }); // another tree's buffers first
      const again = grow(work, p);
      expect(again.tree).toEqual(alone.tree);
      expect(again.leaves).toEqual(alone.leaves);
      // The tree really split the rows, and only leaves hold rows.
      expect(alone.tree.feature.filter((f: number) => f >= 0).length).toBeGreaterThan(20);
      for (const [node] of alone.leaves) expect(alone.tree.feature[node]).toBe(-1);
    });

    it(`${name}: every training row and passenger is labelled with the leaf its values reach`, () => {
      const { tree, leaves } = grow(new TreeWork(), p);
      for (const [node, rows] of leaves) for (const i of rows) expect(walk(tree, i)).toBe(node);
      // A leaf's value is -G / (H + l2) of its training rows (scaled), passengers not counted.
      if (p.l1 === 0) {
        for (const [node, rows] of leaves) {
          let G = 0;
          let H = 0;
          for (const i of rows) if (i >= 1000) (G += g[i]!), (H += h[i]!);
          expect(tree.value[node]!).toBeCloseTo((-G / (H + p.l2)) * p.learnRate, 10);
        }
      }
    });
  }

  it('nodes split by sorting their rows grow the same trees as nodes split by histograms', () => {
    // (No l1: soft-thresholding makes exact ties between splits, which rounding then breaks either way.)
    const p: TreeParams = { maxDepth: 12, minChildWeight: 1, l1: 0, l2: 1, minSplitLoss: 0, colsampleBynode: 0.8, learnRate: 0.3 };
    const byHistogram = grow(new TreeWork(0), p);
    const bySorting = grow(new TreeWork(200), p);
    expect(byHistogram.tree.feature.length).toBeGreaterThan(500);
    expect(bySorting.tree.feature).toEqual(byHistogram.tree.feature);
    expect(bySorting.tree.threshold).toEqual(byHistogram.tree.threshold);
    expect(bySorting.leaves).toEqual(byHistogram.leaves);
    // Sums in another order: equal to rounding.
    bySorting.tree.value.forEach((v: number, i: number) => expect(v).toBeCloseTo(byHistogram.tree.value[i]!, 10));
  });

  it('a forest grows the same trees on one thread and on two (each tree has a seed of its own)', async () => {
    const task = {
      gh, K: 1, train, evalRows: firstRows, round: 0,
      params: { maxDepth: 8, minChildWeight: 1, l1: 0, l2: 1, minSplitLoss: 0, colsampleBynode: 0.8, learnRate: 1, subsample: 0.8, numParallelTree: 5, seed: 3 },
    };
    const one = await growForest(binned, task, 1, 0);
    const two = await growForest(binned, task, 2, 0);
    expect(one.trees.map((x) => x.index)).toEqual([0, 1, 2, 3, 4]);
    expect(two.trees).toEqual(one.trees);
    expect(one.trees[0]!.feature).not.toEqual(one.trees[1]!.feature); // the seeds differ by tree
    // Summed leaf values of every training and evaluation row (in another order: to rounding).
    for (let i = 0; i < n; i++) expect(two.delta[i]!).toBeCloseTo(one.delta[i]!, 12);
    expect(one.delta.some((v, i) => i < 1000 && v !== 0)).toBe(true); // passengers too
  });

  /** The best root split's gain, by trying every edge of every feature on the rows themselves. */
  const bruteForceRootGain = (Y: Float64Array, cols: number, edges: Float64Array[], rowsIn: Iterable<number>, G1: Float64Array, H1: Float64Array) => {
    const score = (G: number, H: number) => (G * G) / (H + 1);
    const list = Array.from(rowsIn);
    let G = 0;
    let H = 0;
    for (const i of list) {
      G += G1[i]!;
      H += H1[i]!;
    }
    let best = -Infinity;
    for (let f = 0; f < cols; f++) {
      for (const edge of edges[f]!) {
        let GL = 0;
        let HL = 0;
        for (const i of list) {
          if (Y[i * cols + f]! <= edge) {
            GL += G1[i]!;
            HL += H1[i]!;
          }
        }
        if (HL >= 1 && H - HL >= 1) best = Math.max(best, score(GL, HL) + score(G - GL, H - HL) - score(G, H));
      }
    }
    return best;
  };
  const stump: TreeParams = { maxDepth: 1, minChildWeight: 1, l1: 0, l2: 1, minSplitLoss: 0, colsampleBynode: 1, learnRate: 1 };

  it('a split is the best of every candidate (brute force over the root)', () => {
    const { tree } = grow(new TreeWork(), stump);
    expect((tree as Tree).gain[0]!).toBeCloseTo(bruteForceRootGain(X, d, binned.edges, train, g, h), 6);
  });

  it('rows wider than the written-out histogram pass (150 features) split as well as brute force says', () => {
    const m = 1500;
    const wide = 150;
    const r = new Random(4);
    const Y = Float64Array.from({ length: m * wide }, () => Math.floor(r.next() * 20));
    const all = Uint32Array.from({ length: m }, (_, i) => i);
    const b = binMatrix(Y, m, wide, all, 1);
    // The signal sits in the last feature, which only the looped pass's last word holds.
    const G1 = Float64Array.from({ length: m }, (_, i) => (Y[i * wide + wide - 1]! > 9 ? 1 : -1) + (r.next() - 0.5) * 0.1);
    const H1 = new Float64Array(m).fill(1);
    const GH1 = new Float64Array(2 * m);
    G1.forEach((v, i) => (GH1[2 * i] = v, GH1[2 * i + 1] = H1[i]!));
    const { tree } = growTree(b, Uint32Array.from(all), GH1, stump, new Random(5));
    expect((tree as Tree).feature[0]).toBe(wide - 1);
    expect((tree as Tree).gain[0]!).toBeCloseTo(bruteForceRootGain(Y, wide, b.edges, all, G1, H1), 6);
  });

  it('every value falls in the bin the edges say (uniform, skewed, few distinct, constant, negative columns)', () => {
    const m = 30_000;
    const cols = 5;
    const r = new Random(3);
    const Y = new Float64Array(m * cols);
    for (let i = 0; i < m; i++) {
      Y[i * cols] = r.next() * 100;
      Y[i * cols + 1] = Math.exp(r.next() * 30); // edges crowd at the low end
      Y[i * cols + 2] = Math.floor(r.next() * 7) / 3;
      Y[i * cols + 3] = 4.25;
      Y[i * cols + 4] = -1e6 + r.next() * 1e-3;
    }
    const all = Uint32Array.from({ length: m }, (_, i) => i);
    const b = binMatrix(Y, m, cols, all.subarray(0, 20_000), 1);
    for (let f = 0; f < cols; f++) {
      for (let i = 0; i < m; i++) {
        const want = binOf(b.edges[f]!, Y[i * cols + f]!);
        if (b.cols[f * m + i] !== want || b.bins[i * b.stride + f] !== want) expect([f, i, b.cols[f * m + i]]).toEqual([f, i, want]);
      }
    }
    expect(b.edges[0]!.length).toBeGreaterThan(200);
    expect(b.edges[2]!.length).toBe(6);
  });
});

describe('binary gradients from cached exp(-margin)', () => {
  // Margins from -300 to 300 (past the 1e100 cut-over to the exact path), unit and class weights,
  // and E drifted by a boosting-like product of per-leaf factors.
  const n = 5000;
  const rng = new Random(3);
  const F = Float64Array.from({ length: n }, (_, i) => (i < 20 ? (i - 10) * 30 : (rng.next() - 0.5) * 16));
  const y = Float64Array.from({ length: n }, () => (rng.next() < 0.4 ? 1 : 0));
  const rows = Uint32Array.from({ length: n - 7 }, (_, i) => i + 7);
  for (const [name, w] of [
    ['unit weights', new Float64Array(n).fill(1)],
    ['class weights', Float64Array.from(y, (v) => (v === 1 ? 2.5 : 0.6))],
  ] as const) {
    it(`${name}: the same gradients, hessians and loss as computing exp and log per row`, () => {
      const t = { problem: 'binary' as const, y, w, classes: ['f', 't'], K: 1 };
      const E = new Float64Array(n);
      const Fd = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        // 50 leaf updates of +-0.1: the kept E carries 50 rounding steps.
        let m = F[i]!;
        let e = Math.exp(-m);
        for (let r = 0; r < 50; r++) {
          const v = ((i + r) % 3) - 1 === 0 ? 0.1 : -0.1;
          m += v;
          e *= Math.exp(-v);
        }
        Fd[i] = m;
        E[i] = e;
      }
      const gh1 = new Float64Array(2 * n);
      const gh2 = new Float64Array(2 * n);
      const exact = gradients(t, Fd, rows, gh1);
      const cached = binaryGradientsFromExp(t, Fd, E, rows, gh2);
      const g1 = gh1.filter((_, j) => j % 2 === 0), h1 = gh1.filter((_, j) => j % 2 === 1);
      const g2 = gh2.filter((_, j) => j % 2 === 0), h2 = gh2.filter((_, j) => j % 2 === 1);
      expect(Math.abs(cached - exact)).toBeLessThan(1e-12 * exact);
      expect(Math.abs(binaryLossFromExp(t, Fd, E, rows) - meanLoss(t, Fd, rows))).toBeLessThan(1e-12 * exact);
      for (const i of rows) {
        expect(Math.abs(g2[i]! - g1[i]!)).toBeLessThanOrEqual(1e-12 * Math.max(1e-300, Math.abs(g1[i]!)) + 1e-300);
        // 1e-15 absolute: the per-row path's 1 - p loses the last digits of p (1 - p) near p = 1.
        expect(Math.abs(h2[i]! - h1[i]!)).toBeLessThanOrEqual(1e-12 * h1[i]! + 1e-15);
      }
      expect(g2[0]).toBe(0); // rows not listed are not written
    });
  }
});
