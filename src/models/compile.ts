import { UserError } from '../util/errors.ts';
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

export function parameterList(spec: FeatureSpec): string {
  return spec.features.map((f) => `${quoteIdent(f.name)} ${argumentType(f)}`).join(', ');
}

export function argumentTypes(spec: FeatureSpec): string {
  return spec.features.map(argumentType).join(', ');
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

export function plpgsql(declare: string[], body: string[]): string {
  // Locals live in an inner block so that no feature (parameter) name can clash with them;
  // parameters are referenced by position.
  return dollarQuote(['BEGIN', '  DECLARE', ...declare.map((l) => '    ' + l), '  BEGIN', ...body.map((l) => '    ' + l), '  END;', 'END'].join('\n'));
}

/** PostgreSQL's limit on a function's arguments (FUNC_MAX_ARGS): a generated function takes one per input column. */
export const MAX_FUNCTION_ARGUMENTS = 100;

/** Refuses, before any training, a model whose generated functions PostgreSQL could not create. */
export function assertCompilable(spec: FeatureSpec): void {
  if (spec.features.length > MAX_FUNCTION_ARGUMENTS) {
    throw new UserError(
      `the model would have ${spec.features.length} input columns, and its generated SQL functions take one argument per column, at most ${MAX_FUNCTION_ARGUMENTS}; list columns in "exclude" or combine them in the query`,
    );
  }
}
