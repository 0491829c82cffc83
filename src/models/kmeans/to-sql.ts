import { quoteIdent, quoteLiteral } from '../../db/connect.ts';
import type { FeatureSpec } from '../../features/prepare.ts';
import type { DistanceType } from './geometry.ts';

// Compiles a k-means model into PL/pgSQL. Measured on 1M rows x 8 features, k = 8 (see the
// performance issue): PL/pgSQL with one scalar local per quantity scores in 0.93 s, an
// inlinable one-expression SQL function in 1.6 s, PL/pgSQL looping over arrays in 8.2 s. So
// the body is straight-line code: one local per feature, one dot product per centroid,
// ||x - c||^2 = x.x - 2 x.c + c.c with c.c folded to a constant.

export interface CompiledKmeans {
  spec: FeatureSpec;
  centroids: Float64Array; // k x dims, model space
  k: number;
  distance: DistanceType;
  /**
   * Density models: the points are exemplars, and output c is the distance to the nearest
   * exemplar of group c; a row farther than reach[c] from its nearest group is noise (-1).
   */
  groups?: number[][];
  reach?: number[];
}

/** SQL number literal with the exact float8 value (JS's shortest round-trip form). */
export function num(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot compile non-finite constant ${x}`);
  const s = String(x);
  return x < 0 ? `(${s})` : s;
}

export function parameterList(spec: FeatureSpec): string {
  return spec.features.map((f) => `${quoteIdent(f.name)} ${f.kind === 'numeric' ? 'float8' : 'text'}`).join(', ');
}

export function argumentTypes(spec: FeatureSpec): string {
  return spec.features.map((f) => (f.kind === 'numeric' ? 'float8' : 'text')).join(', ');
}

/** Statements computing d2_1 .. d2_k (squared distances in model space), and their locals. */
function distanceBody(m: CompiledKmeans): { declare: string[]; body: string[] } {
  const { spec, centroids: C, k, distance } = m;
  const d = spec.dims;
  const declare: string[] = [];
  const body: string[] = [];
  // Model-space coordinates: numeric z-scores, and per categorical feature the position of the
  // row's category (0 = unseen: an all-zero block).
  const terms: { kind: 'z'; local: string; dim: number }[] = [];
  const cats: { local: string; offset: number; size: number }[] = [];
  const zz: string[] = [];
  spec.features.forEach((f, i) => {
    const arg = `$${i + 1}`;
    if (f.kind === 'numeric') {
      const local = `z${i + 1}`;
      declare.push(`${local} float8;`);
      body.push(`${local} := (coalesce(${arg}, ${num(f.mean)}) - ${num(f.mean)}) * ${num(1 / f.scale)};`);
      terms.push({ kind: 'z', local, dim: f.offset });
      zz.push(`${local} * ${local}`);
    } else {
      const local = `b${i + 1}`;
      declare.push(`${local} int;`);
      const whens = f.categories.map((c, j) =>
        c === null ? `WHEN ${arg} IS NULL THEN ${j + 1}` : `WHEN ${arg} = ${quoteLiteral(c)} THEN ${j + 1}`,
      );
      body.push(`${local} := CASE ${whens.join(' ')} ELSE 0 END;`);
      cats.push({ local, offset: f.offset, size: f.categories.length });
      zz.push(`(${local} > 0)::int`);
    }
  });
  declare.push('xx float8;');
  body.push(`xx := ${zz.join(' + ')};`);
  for (let c = 0; c < k; c++) {
    const row = c * d;
    const dot: string[] = terms.map((t) => `${t.local} * ${num(C[row + t.dim]!)}`);
    for (const cat of cats) {
      const whens: string[] = [];
      for (let j = 0; j < cat.size; j++) whens.push(`WHEN ${j + 1} THEN ${num(C[row + cat.offset + j]!)}`);
      dot.push(`CASE ${cat.local} ${whens.join(' ')} ELSE 0 END`);
    }
    let cc = 0;
    for (let j = 0; j < d; j++) cc += C[row + j]! * C[row + j]!;
    declare.push(`d${c + 1} float8;`);
    const dotExpr = dot.length ? dot.join(' + ') : '0';
    if (distance === 'euclidean') {
      body.push(`d${c + 1} := greatest(xx - 2 * (${dotExpr}) + ${num(cc)}, 0);`);
    } else {
      const cn = Math.sqrt(cc);
      body.push(
        cn > 0
          ? `d${c + 1} := CASE WHEN xx > 0 THEN greatest(1 - (${dotExpr}) / (sqrt(xx) * ${num(cn)}), 0) ELSE 1 END;`
          : `d${c + 1} := 1;`,
      );
    }
  }
  return { declare, body };
}

function dollarQuote(body: string): string {
  let tag = '$sqlml$';
  for (let i = 0; body.includes(tag); i++) tag = `$sqlml${i}$`;
  return `${tag}\n${body}\n${tag}`;
}

function plpgsql(declare: string[], body: string[]): string {
  // Locals live in an inner block so that no feature (parameter) name can clash with them;
  // parameters are referenced by position.
  return dollarQuote(['BEGIN', '  DECLARE', ...declare.map((l) => '    ' + l), '  BEGIN', ...body.map((l) => '    ' + l), '  END;', 'END'].join('\n'));
}

/** Per output (centroid, or group of exemplars): the squared distance expression. */
function outputs(m: CompiledKmeans): string[] {
  if (!m.groups) return Array.from({ length: m.k }, (_, c) => `d${c + 1}`);
  return m.groups.map((g) => (g.length === 1 ? `d${g[0]! + 1}` : `least(${g.map((e) => `d${e + 1}`).join(', ')})`));
}

/** Internal function: the distance to every centroid, as float8[] (ml_predict, ml_evaluate). */
export function distancesFunctionSql(m: CompiledKmeans, qualifiedName: string): string {
  const { declare, body } = distanceBody(m);
  const list = outputs(m).map((o) => `sqrt(${o})`).join(', ');
  body.push(`RETURN ARRAY[${list}];`);
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(declare, body)}`;
}

/** The user's function (Redshift ML's FUNCTION clause): the nearest centroid's id, 1..k (-1: noise). */
export function predictFunctionSql(m: CompiledKmeans, qualifiedName: string): string {
  const { declare, body } = distanceBody(m);
  const out = outputs(m);
  declare.push('best int;', 'bd float8;', 'o float8;');
  body.push('best := 1;', `bd := ${out[0]};`);
  for (let c = 2; c <= out.length; c++) body.push(`o := ${out[c - 1]}; IF o < bd THEN best := ${c}; bd := o; END IF;`);
  if (m.reach) {
    const whens = m.reach.map((r, c) => `WHEN ${c + 1} THEN ${num(r * r)}`).join(' ');
    body.push(`IF bd > (CASE best ${whens} END) THEN RETURN -1; END IF;`);
  }
  body.push('RETURN best;');
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS int
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(declare, body)}`;
}
