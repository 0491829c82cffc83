import { quoteIdent, quoteLiteral } from '../db/connect.ts';
import type { CategoricalFeature, FeatureSpec } from '../features/prepare.ts';

// What every model family's SQL compiler shares: exact number literals, the typed parameter
// list (the model's features in training order) and the PL/pgSQL wrapper.

/** SQL number literal with the exact float8 value (JS's shortest round-trip form). */
export function num(x: number): string {
  if (!Number.isFinite(x)) throw new Error(`cannot compile non-finite constant ${x}`);
  const s = String(x);
  return x < 0 ? `(${s})` : s;
}

/** A feature's argument type: numeric ones float8, boolean and date columns their type, other categories text. */
function argumentType(f: FeatureSpec['features'][number]): string {
  return f.kind === 'numeric' ? 'float8' : f.type ?? 'text';
}

/** PostgreSQL's limit on a function's arguments (FUNC_MAX_ARGS). */
export const MAX_FUNCTION_ARGUMENTS = 100;

/**
 * A model with more input columns than a function may have arguments: its generated functions
 * take the row as one jsonb argument instead (m_predict(to_jsonb(t))), unpacked into locals.
 */
export function isWide(spec: FeatureSpec): boolean {
  return spec.features.length > MAX_FUNCTION_ARGUMENTS;
}

export function parameterList(spec: FeatureSpec): string {
  if (isWide(spec)) return 'features jsonb';
  return spec.features.map((f) => `${quoteIdent(f.name)} ${argumentType(f)}`).join(', ');
}

export function argumentTypes(spec: FeatureSpec): string {
  return isWide(spec) ? 'jsonb' : spec.features.map(argumentType).join(', ');
}

/** How a generated body refers to feature i: its parameter by position, or a wide model's local. */
export function featureArg(spec: FeatureSpec, i: number): string {
  return isWide(spec) ? `f${i + 1}` : `$${i + 1}`;
}

/** A wide model's locals: each feature read from the jsonb row as the type it was trained as. */
function unpackWide(spec: FeatureSpec): string[] {
  if (!isWide(spec)) return [];
  return spec.features.map((f, i) => {
    const type = argumentType(f);
    const text = `($1 ->> ${quoteLiteral(f.name)})`;
    return `f${i + 1} ${type} := ${type === 'text' ? text : `${text}::${type}`};`;
  });
}

/**
 * CASE on a category argument: the position (counted from `first`) of its category, as
 * transform() computes it; a value not listed goes to the (other) bucket when the feature has
 * one, else gets `unseen`.
 */
export function categoryPosition(arg: string, f: CategoricalFeature, first: number, unseen: number): string {
  const kept = f.other ? f.categories.slice(0, -1) : f.categories;
  const whens = kept.map((c, j) => (c === null ? `WHEN ${arg} IS NULL THEN ${j + first}` : `WHEN ${arg} = ${quoteLiteral(c)} THEN ${j + first}`));
  const otherwise = f.other ? kept.length + first : unseen;
  return whens.length ? `CASE ${whens.join(' ')} ELSE ${otherwise} END` : String(otherwise);
}

export function dollarQuote(body: string): string {
  let tag = '$sqlml$';
  for (let i = 0; body.includes(tag); i++) tag = `$sqlml${i}$`;
  return `${tag}\n${body}\n${tag}`;
}

export function plpgsql(spec: FeatureSpec, declare: string[], body: string[]): string {
  // Locals live in an inner block so that no feature (parameter) name can clash with them;
  // parameters are referenced by position (a wide model's features by their locals f1..fN).
  const locals = [...unpackWide(spec), ...declare];
  return dollarQuote(['BEGIN', '  DECLARE', ...locals.map((l) => '    ' + l), '  BEGIN', ...body.map((l) => '    ' + l), '  END;', 'END'].join('\n'));
}

/** One local v<dim> per model-space dimension, exactly as transform() computes it (tree and PCA functions). */
export function modelSpaceLocals(spec: FeatureSpec, declare: string[], body: string[]): void {
  spec.features.forEach((f, i) => {
    const local = `v${f.offset + 1}`;
    if (f.kind === 'numeric') {
      declare.push(`${local} float8;`);
      body.push(`${local} := (coalesce(${featureArg(spec, i)}, ${num(f.mean)}) - ${num(f.mean)}) * ${num(1 / f.scale)};`);
    } else if (f.encoding === 'label') {
      declare.push(`${local} float8;`);
      body.push(`${local} := ${categoryPosition(featureArg(spec, i), f, 0, -1)};`);
    } else {
      // One-hot: one 0/1 local per category.
      declare.push(`b${i + 1} int;`);
      body.push(`b${i + 1} := ${categoryPosition(featureArg(spec, i), f, 1, 0)};`);
      f.categories.forEach((_, j) => {
        declare.push(`v${f.offset + j + 1} float8;`);
        body.push(`v${f.offset + j + 1} := (b${i + 1} = ${j + 1})::int;`);
      });
    }
  });
}
