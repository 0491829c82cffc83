import type { FeatureSpec } from '../../features/prepare.ts';
import { quoteIdent } from '../../db/connect.ts';
import { categoryPosition, featureArg, num, parameterList, plpgsql } from '../compile.ts';
import type { DistanceType } from './geometry.ts';

export { argumentTypes } from '../compile.ts';

// Compiles a model's points (k-means centroids, or density exemplars) into PL/pgSQL.
//
// Why this shape (1M rows x 8 float8, k = 8, this 2-core machine, `npm run bench`): a PL/pgSQL
// statement costs ~0.1-0.2 us whatever it computes, so the body has as few statements as
// possible. Standardization is folded into the constants: with x the raw (NULL -> mean) input,
// z = (x - mean) * s, and ||z - c||^2 = z.z + K_c - 2 * sum_j x_j w_cj, where w_cj = s_j c_j and
// K_c = c.c + 2 sum_j mean_j s_j c_j are constants. The argmin does not need z.z at all, so
// <model>_predict is one statement per categorical feature, one per centroid and one RETURN,
// the fastest of the forms measured (docs/performance-log.md).

export interface CompiledKmeans {
  spec: FeatureSpec;
  centroids: Float64Array; // k x dims, model space
  k: number; // points (centroids, or exemplars when `groups` is set)
  distance: DistanceType;
  /**
   * Density models: the points are exemplars, and output c is the distance to the nearest
   * exemplar of group c; a row farther than reach[c] from its nearest group is noise (-1).
   */
  groups?: number[][];
  reach?: number[];
}

interface Terms {
  declare: string[];
  body: string[]; // statements computing the categorical positions b_i
  xx: string; // z.z, the squared norm of the row in model space
  linear: string[]; // per point: sum_j x_j w_cj + categorical shares (the part of x.c that varies)
  offset: number[]; // per point: sum_j mean_j s_j c_j, so that x.c = linear - offset
  cc: number[]; // per point: c.c
}

/**
 * The compiled terms over the function's arguments, or with `columns`, inline over the columns
 * of a row (one expression, no locals: ml_scoring_expression).
 */
function terms(m: CompiledKmeans, columns = false): Terms {
  const { spec, centroids: C, k } = m;
  const d = spec.dims;
  const declare: string[] = [];
  const body: string[] = [];
  const xx: string[] = [];
  const cats: { local: string; offset: number; size: number }[] = [];
  const nums: { arg: string; mean: number; inv: number; dim: number }[] = [];
  spec.features.forEach((f, i) => {
    if (f.kind === 'numeric') {
      // (as CASE for the columns: postgres_fdw ships CASE but not COALESCE)
      const col = `(${quoteIdent(f.name)})::float8`;
      const x = columns ? `CASE WHEN ${col} IS NULL THEN ${num(f.mean)} ELSE ${col} END` : `coalesce(${featureArg(spec, i)}, ${num(f.mean)})`;
      nums.push({ arg: x, mean: f.mean, inv: 1 / f.scale, dim: f.offset });
      xx.push(`((${x} - ${num(f.mean)}) * ${num(1 / f.scale)}) ^ 2`);
    } else {
      // The position of the row's category (0 = unseen: an all-zero block).
      let local = `b${i + 1}`;
      if (columns) local = `(${categoryPosition(quoteIdent(f.name), f, 1, 0)})`;
      else {
        declare.push(`${local} int;`);
        body.push(`${local} := ${categoryPosition(featureArg(spec, i), f, 1, 0)};`);
      }
      cats.push({ local, offset: f.offset, size: f.categories.length });
      xx.push(`(${local} > 0)::int`);
    }
  });
  const linear: string[] = [];
  const offset: number[] = [];
  const cc: number[] = [];
  for (let c = 0; c < k; c++) {
    const row = c * d;
    const parts = nums.map((t) => `${t.arg} * ${num(t.inv * C[row + t.dim]!)}`);
    for (const cat of cats) {
      const whens: string[] = [];
      for (let j = 0; j < cat.size; j++) if (C[row + cat.offset + j] !== 0) whens.push(`WHEN ${j + 1} THEN ${num(C[row + cat.offset + j]!)}`);
      if (whens.length) parts.push(`CASE ${cat.local} ${whens.join(' ')} ELSE 0 END`);
    }
    linear.push(parts.length ? parts.join(' + ') : '0');
    offset.push(nums.reduce((s, t) => s + t.mean * t.inv * C[row + t.dim]!, 0));
    let sq = 0;
    for (let j = 0; j < d; j++) sq += C[row + j]! * C[row + j]!;
    cc.push(sq);
  }
  return { declare, body, xx: xx.length ? xx.join(' + ') : '0', linear, offset, cc };
}

/** Squared distance expression of each point (uses local xx). */
function squaredDistances(m: CompiledKmeans, t: Terms): string[] {
  return t.linear.map((lin, c) => {
    if (m.distance === 'euclidean') return `greatest(xx + ${num(t.cc[c]! + 2 * t.offset[c]!)} - 2 * (${lin}), 0)`;
    const cn = Math.sqrt(t.cc[c]!);
    return cn > 0 ? `CASE WHEN xx > 0 THEN greatest(1 - ((${lin}) - ${num(t.offset[c]!)}) / (sqrt(xx) * ${num(cn)}), 0) ELSE 1 END` : '1';
  });
}

/** CASE least(e1..en) WHEN e1 THEN 1 ... : the first smallest, as ORDER BY v, i picks it. */
function argmin(names: string[]): string {
  return `CASE least(${names.join(', ')}) ${names.map((e, i) => `WHEN ${e} THEN ${i + 1}`).join(' ')} END`;
}

/** Internal function: the distance to every centroid (or group), as float8[] (ml_predict, ml_evaluate). */
export function distancesFunctionSql(m: CompiledKmeans, qualifiedName: string): string {
  const t = terms(m);
  const declare = [...t.declare, 'xx float8;'];
  const body = [...t.body, `xx := ${t.xx};`];
  const d2 = squaredDistances(m, t);
  let out: string[];
  if (!m.groups) out = d2.map((e) => `sqrt(${e})`);
  else {
    d2.forEach((e, c) => {
      declare.push(`d${c + 1} float8;`);
      body.push(`d${c + 1} := ${e};`);
    });
    out = m.groups.map((g) => `sqrt(least(${g.map((e) => `d${e + 1}`).join(', ')}))`);
  }
  body.push(`RETURN ARRAY[${out.join(', ')}];`);
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, body)}`;
}

/** Centroids listed in ml_predict's nearest_centroids_distance. */
export const NEAREST_LISTED = 5;

/**
 * Internal function of a k-means model for ml_predict: the nearest centroid and the
 * min(k, 5) nearest as jsonb [{centroid_id, distance}], ascending (ties by id), in one
 * ml.nearest_centroids value. Each rank is one least() over the distances not yet listed and
 * one CASE for its id: ranking in the function, called below the Gather of a parallel plan,
 * replaced a per-row LATERAL sort and jsonb_agg that ran on one core above it. The list is built by
 * to_jsonb() of a composite array (2/3 of the time of casting assembled text to jsonb).
 */
export function nearestFunctionSql(m: CompiledKmeans, qualifiedName: string): string {
  if (m.groups) throw new Error('nearestFunctionSql is for k-means models');
  const t = terms(m);
  const declare = [...t.declare, 'xx float8;'];
  const body = [...t.body, `xx := ${t.xx};`];
  // Euclidean: rank by the part of the squared distance that differs between centroids (as
  // <model>_predict does) and take square roots for the listed ranks only.
  const euclidean = m.distance === 'euclidean';
  const d = (euclidean ? t.linear.map((lin, c) => `${num(t.cc[c]! + 2 * t.offset[c]!)} - 2 * (${lin})`) : squaredDistances(m, t)).map((e, c) => {
    declare.push(`d${c + 1} float8;`);
    body.push(`d${c + 1} := ${e};`);
    return `d${c + 1}`;
  });
  const distance = (v: string) => (euclidean ? `sqrt(greatest(xx + ${v}, 0))` : `sqrt(${v})`);
  const listed = Math.min(m.k, NEAREST_LISTED);
  for (let r = 1; r <= listed; r++) {
    declare.push(`v${r} float8;`, `i${r} int;`);
    // Centroid c is still a candidate at rank r when no earlier rank took it.
    const free = (c: number) => Array.from({ length: r - 1 }, (_, q) => `i${q + 1} <> ${c}`).join(' AND ');
    const candidates = d.map((name, c) => (r === 1 ? name : `CASE WHEN ${free(c + 1)} THEN ${name} END`));
    body.push(`v${r} := least(${candidates.join(', ')});`);
    const whens = d.map((name, c) => `WHEN ${r === 1 ? '' : `${free(c + 1)} AND `}${name} = v${r} THEN ${c + 1}`);
    body.push(`i${r} := CASE ${whens.join(' ')} END;`);
  }
  const list = Array.from({ length: listed }, (_, r) => `ROW(i${r + 1}, ${distance(`v${r + 1}`)})::ml.centroid_distance`).join(', ');
  body.push(`RETURN ROW(i1, to_jsonb(ARRAY[${list}]))::ml.nearest_centroids;`);
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS ml.nearest_centroids
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, body)}`;
}

/** The user's function (Redshift ML's FUNCTION clause): the nearest centroid's id, 1..k (-1: noise). */
/** Beyond these, a model keeps no scoring expression (ml_scoring_expression says why). */
export const MAX_EXPRESSION_CLUSTERS = 32;
const MAX_EXPRESSION_CHARS = 1_000_000;

/** The part of each centroid's distance that differs between centroids (what the argmin needs). */
function centroidScores(m: CompiledKmeans, t: Terms): string[] {
  return t.linear.map((lin, c) => {
    if (m.distance === 'euclidean') return `${num(t.cc[c]! + 2 * t.offset[c]!)} - 2 * (${lin})`;
    const cn = Math.sqrt(t.cc[c]!);
    return cn > 0 ? `-((${lin}) - ${num(t.offset[c]!)}) / ${num(cn)}` : '0';
  });
}

/**
 * A k-means model's segment as one SQL expression over a row's columns: built-in operators and
 * CASE only, which postgres_fdw (it ships neither COALESCE nor LEAST) and Citus evaluate on the
 * shards; a generated function is not shippable. The same arithmetic as <model>_predict, so the
 * same segment: the first centroid whose score is at most every later one's is the first
 * smallest. Its text grows with k^2 x the model's dimensions.
 */
export function scoringExpression(m: CompiledKmeans): string | null {
  if (m.groups) throw new Error('scoringExpression is for k-means models');
  // its text grows with k^2: kept for models where it stays small (else null: use the function)
  if (m.k > MAX_EXPRESSION_CLUSTERS) return null;
  const e = centroidScores(m, terms(m, true)).map((x) => `(${x})`);
  if (e.length === 1) return '1';
  if (e.reduce((s, x) => s + x.length, 0) * m.k > MAX_EXPRESSION_CHARS) return null;
  const whens = e.slice(0, -1).map((ei, i) => `WHEN ${e.slice(i + 1).map((ej) => `${ei} <= ${ej}`).join(' AND ')} THEN ${i + 1}`);
  return `CASE ${whens.join(' ')} ELSE ${e.length} END`;
}

export function predictFunctionSql(m: CompiledKmeans, qualifiedName: string): string {
  const t = terms(m);
  const declare = [...t.declare];
  const body = [...t.body];
  if (!m.groups) {
    // Only the part of the distance that differs between centroids.
    centroidScores(m, t).forEach((e, c) => {
      declare.push(`e${c + 1} float8;`);
      body.push(`e${c + 1} := ${e};`);
    });
    body.push(`RETURN ${argmin(t.linear.map((_, c) => `e${c + 1}`))};`);
  } else {
    declare.push('xx float8;', 'best int;', 'bd float8;');
    body.push(`xx := ${t.xx};`);
    squaredDistances(m, t).forEach((e, c) => {
      declare.push(`d${c + 1} float8;`);
      body.push(`d${c + 1} := ${e};`);
    });
    const groups = m.groups.map((g, c) => {
      declare.push(`g${c + 1} float8;`);
      body.push(`g${c + 1} := least(${g.map((e) => `d${e + 1}`).join(', ')});`);
      return `g${c + 1}`;
    });
    body.push(`best := ${argmin(groups)};`, `bd := least(${groups.join(', ')});`);
    const whens = m.reach!.map((r, c) => `WHEN ${c + 1} THEN ${num(r * r)}`).join(' ');
    body.push(`IF bd > (CASE best ${whens} END) THEN RETURN -1; END IF;`, 'RETURN best;');
  }
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS int
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, body)}`;
}
