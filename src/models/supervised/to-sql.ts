import { quoteLiteral } from '../../db/connect.ts';
import type { FeatureSpec } from '../../features/prepare.ts';
import { categoryPosition, featureArg, modelSpaceLocals, num, parameterList, plpgsql } from '../compile.ts';
import type { Tree } from '../trees/grow.ts';
import type { Problem } from './target.ts';

// Compiles a supervised model into PL/pgSQL: the feature preparation (NULL -> training mean,
// standardization folded into the weights, categories as CASE), then one statement per margin
// for linear models or per group of trees for tree ensembles (each tree a nested CASE on the
// prepared values, comparing exactly as training did), then the link (identity, sigmoid,
// softmax). Three functions share this body: the internal scores function (float8[]: the
// prediction, or one probability per class), the public <function_name> and, for classifiers,
// <function_name>_probabilities.

export interface CompiledSupervised {
  spec: FeatureSpec;
  problem: Problem;
  classes: string[] | null;
  labelType: string; // SQL type of the label (the public function returns it)
  linear?: { weights: number[][]; intercepts: number[] };
  ensemble?: { base: number[]; trees: (Pick<Tree, 'feature' | 'threshold' | 'left' | 'right' | 'value'> & { group: number })[] };
}

/** Compiled code beyond this many tree nodes would make a multi-megabyte function body. */
export const MAX_COMPILED_NODES = 250_000;
const TREES_PER_STATEMENT = 8;

export function treeNodeCount(m: CompiledSupervised): number {
  return m.ensemble ? m.ensemble.trees.reduce((s, t) => s + t.feature.length, 0) : 0;
}

interface Body {
  declare: string[];
  body: string[];
  margins: string[]; // local names m1..mK
}

function marginsBody(m: CompiledSupervised): Body {
  const declare: string[] = [];
  const body: string[] = [];
  const K = m.linear ? m.linear.weights.length : m.ensemble!.base.length;
  const margins = Array.from({ length: K }, (_, k) => `m${k + 1}`);
  for (const name of margins) declare.push(`${name} float8;`);

  if (m.linear) {
    // margin_k = c_k + sum_j w_kj/s_j * coalesce(x_j, mean_j) + per category CASE.
    const cats: { local: string; offset: number; size: number; label: boolean }[] = [];
    m.spec.features.forEach((f, i) => {
      if (f.kind !== 'categorical') return;
      const local = `b${i + 1}`;
      const label = f.encoding === 'label';
      declare.push(`${local} int;`);
      body.push(`${local} := ${categoryPosition(featureArg(m.spec, i), f, label ? 0 : 1, label ? -1 : 0)};`);
      cats.push({ local, offset: f.offset, size: f.categories.length, label });
    });
    m.linear.weights.forEach((w, k) => {
      let constant = m.linear!.intercepts[k]!;
      const parts: string[] = [];
      m.spec.features.forEach((f, i) => {
        if (f.kind !== 'numeric') return;
        const coef = w[f.offset]! / f.scale;
        if (coef === 0) return;
        constant -= coef * f.mean;
        parts.push(`coalesce(${featureArg(m.spec, i)}, ${num(f.mean)}) * ${num(coef)}`);
      });
      for (const c of cats) {
        if (c.label) {
          if (w[c.offset] !== 0) parts.push(`${c.local} * ${num(w[c.offset]!)}`);
          continue;
        }
        const whens: string[] = [];
        for (let j = 0; j < c.size; j++) if (w[c.offset + j] !== 0) whens.push(`WHEN ${j + 1} THEN ${num(w[c.offset + j]!)}`);
        if (whens.length) parts.push(`CASE ${c.local} ${whens.join(' ')} ELSE 0 END`);
      }
      body.push(`${margins[k]} := ${[num(constant), ...parts].join(' + ')};`);
    });
  } else {
    modelSpaceLocals(m.spec, declare, body);
    const e = m.ensemble!;
    e.base.forEach((b, k) => body.push(`${margins[k]} := ${num(b)};`));
    const pending = new Map<number, string[]>();
    const flush = (k: number) => {
      const parts = pending.get(k);
      if (parts?.length) body.push(`${margins[k]} := ${margins[k]} + ${parts.join(' + ')};`);
      pending.set(k, []);
    };
    for (const t of e.trees) {
      const parts = pending.get(t.group) ?? [];
      parts.push(treeSql(t, 0));
      pending.set(t.group, parts);
      if (parts.length >= TREES_PER_STATEMENT) flush(t.group);
    }
    for (const k of pending.keys()) flush(k);
  }
  return { declare, body, margins };
}

/** Internal, tree models: the row in model space (float8[] of v1..vD), what TreeSHAP walks. */
export function vectorFunctionSql(m: CompiledSupervised, qualifiedName: string): string {
  const declare: string[] = [];
  const body: string[] = [];
  modelSpaceLocals(m.spec, declare, body);
  const dims = Array.from({ length: m.spec.dims }, (_, j) => `v${j + 1}`);
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, [...body, `RETURN ARRAY[${dims.join(', ')}]::float8[];`])}`;
}

function treeSql(t: CompiledSupervised['ensemble'] extends infer E ? (E extends { trees: (infer T)[] } ? T : never) : never, node: number): string {
  const f = t.feature[node]!;
  if (f < 0) return num(t.value[node]!);
  return `(CASE WHEN v${f + 1} <= ${num(t.threshold[node]!)} THEN ${treeSql(t, t.left[node]!)} ELSE ${treeSql(t, t.right[node]!)} END)`;
}

/** Statements that turn the margins into probabilities p1..pC (classification). */
function probabilities(m: CompiledSupervised, b: Body): string[] {
  const C = m.classes!.length;
  const names = Array.from({ length: C }, (_, c) => `p${c + 1}`);
  for (const name of names) b.declare.push(`${name} float8;`);
  if (m.problem === 'binary') {
    // The branch keeps exp() from overflowing; the clamp keeps it from underflowing.
    b.declare.push('z float8;');
    b.body.push(`z := greatest(-700, least(700, m1));`);
    b.body.push(`p2 := CASE WHEN z >= 0 THEN 1 / (1 + exp(-z)) ELSE exp(z) / (1 + exp(z)) END;`, `p1 := 1 - p2;`);
  } else {
    b.declare.push('top float8;', 'total float8;');
    b.body.push(`top := greatest(${b.margins.join(', ')});`);
    names.forEach((p, c) => b.body.push(`${p} := exp(greatest(-700, ${b.margins[c]} - top));`));
    b.body.push(`total := ${names.join(' + ')};`);
    names.forEach((p) => b.body.push(`${p} := ${p} / total;`));
  }
  return names;
}

/** The class (1-based) the public function returns: the positive one at p >= 0.5, else the first most probable. */
function argmaxSql(probs: string[]): string {
  if (probs.length === 2) return `CASE WHEN p2 >= 0.5 THEN 2 ELSE 1 END`;
  return `CASE greatest(${probs.join(', ')}) ${probs.map((p, i) => `WHEN ${p} THEN ${i + 1}`).join(' ')} END`;
}

function fn(name: string, m: CompiledSupervised, returns: string, b: Body, ret: string): string {
  return `CREATE OR REPLACE FUNCTION ${name}(${parameterList(m.spec)}) RETURNS ${returns}
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, b.declare, [...b.body, `RETURN ${ret};`])}`;
}

/** Internal: float8[] = [prediction] or the probability of each class, in class order. */
export function scoresFunctionSql(m: CompiledSupervised, qualifiedName: string): string {
  const b = marginsBody(m);
  if (m.problem === 'regression') return fn(qualifiedName, m, 'float8[]', b, 'ARRAY[m1]');
  const probs = probabilities(m, b);
  return fn(qualifiedName, m, 'float8[]', b, `ARRAY[${probs.join(', ')}]`);
}

/** Public (Redshift ML's FUNCTION): the predicted value, or the predicted label in the label's type. */
export function predictFunctionSql(m: CompiledSupervised, qualifiedName: string): string {
  const b = marginsBody(m);
  if (m.problem === 'regression') return fn(qualifiedName, m, 'float8', b, 'm1');
  const probs = probabilities(m, b);
  const labels = `CASE ${argmaxSql(probs)} ${m.classes!.map((c, i) => `WHEN ${i + 1} THEN ${quoteLiteral(c)}`).join(' ')} END`;
  return fn(qualifiedName, m, m.labelType, b, `(${labels})::${m.labelType}`);
}

/** Public, classifiers: Redshift ML's <function>_probabilities, {"probabilities": [...], "labels": [...]}. */
export function probabilitiesFunctionSql(m: CompiledSupervised, qualifiedName: string): string {
  const b = marginsBody(m);
  const probs = probabilities(m, b);
  const labels = `jsonb_build_array(${m.classes!.map((c) => quoteLiteral(c)).join(', ')})`;
  return fn(qualifiedName, m, 'jsonb', b, `jsonb_build_object('probabilities', jsonb_build_array(${probs.join(', ')}), 'labels', ${labels})`);
}

/**
 * Internal, linear models: each input column's contribution to each margin, float8[] of
 * margins x features (margin-major): numeric w/s * (x - mean), categorical the weight of the
 * row's category. ml_explain_predict subtracts the mean contributions (the baseline).
 */
export function contributionsFunctionSql(m: CompiledSupervised, qualifiedName: string): string {
  const lin = m.linear!;
  const declare: string[] = [];
  const body: string[] = [];
  const out: string[] = [];
  const locals = m.spec.features.map((f, i) => {
    if (f.kind === 'numeric') return null;
    const local = `b${i + 1}`;
    declare.push(`${local} int;`);
    body.push(`${local} := ${categoryPosition(featureArg(m.spec, i), f, f.encoding === 'label' ? 0 : 1, f.encoding === 'label' ? -1 : 0)};`);
    return local;
  });
  for (const w of lin.weights) {
    m.spec.features.forEach((f, i) => {
      if (f.kind === 'numeric') out.push(`(coalesce(${featureArg(m.spec, i)}, ${num(f.mean)}) - ${num(f.mean)}) * ${num(w[f.offset]! / f.scale)}`);
      else if (f.encoding === 'label') out.push(`${locals[i]} * ${num(w[f.offset]!)}`);
      else {
        const whens = f.categories.map((_, j) => `WHEN ${j + 1} THEN ${num(w[f.offset + j]!)}`);
        out.push(`CASE ${locals[i]} ${whens.join(' ')} ELSE 0 END`);
      }
    });
  }
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, [...body, `RETURN ARRAY[${out.join(', ')}];`])}`;
}
