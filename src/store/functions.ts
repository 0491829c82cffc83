import type { PoolClient } from 'pg';
import { sql } from 'kysely';
import { quoteIdent, quoteLiteral } from '../db/connect.ts';
import { UserError, sqlState } from '../util/errors.ts';
import { ml, run } from './sql.ts';

// The generated functions of a model: the public ones (created or replaced in place, never over
// a function sqlml did not make, executable by the model's owner and grantees only) and the
// record of every function a model owns (ml.generated_functions), by which they are dropped.

/** A public generated function: its qualified name, its CREATE statement and its comment. */
export interface PublicFunction {
  name: string; // schema-qualified, quoted
  argumentTypes: string;
  create: string;
  comment: string;
}

/**
 * The public functions (default <model>_predict, and <model>_predict_probabilities for
 * classifiers) serve the newest ready version. Returns their signatures, or null when a newer
 * version is already ready (then this version keeps only its internal function, reachable as
 * 'model@version'). Older versions' public functions that differ go away.
 */
export async function publishFunctions(client: PoolClient, w: { modelId: string; modelName: string; version: number }, fns: PublicFunction[], roles: string[]): Promise<string[] | null> {
  const newer = await client.query(
    `SELECT 1 FROM ml.models m JOIN ml.jobs j ON j.id = m.job_id
      WHERE m.model_name = $1 AND m.version > $2 AND j.status = 'ready'`,
    [w.modelName, w.version],
  );
  if ((newer.rowCount ?? 0) > 0) return null;
  for (const f of fns) await refuseForeignFunctions(client, f, w.modelName);
  // Earlier versions' public functions go, except those replaced in place (same signature).
  const wanted = new Set<string>();
  for (const f of fns) {
    const { rows } = await client.query<{ oid: string | null }>(`SELECT to_regprocedure($1)::oid::text AS oid`, [`${f.name}(${f.argumentTypes})`]);
    if (rows[0]?.oid) wanted.add(rows[0].oid);
  }
  const old = await client.query<{ fn: string }>(
    `SELECT g.fn::text FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id
      WHERE m.model_name = $1 AND g.model_id <> $2 AND g.kind = 'public'`,
    [w.modelName, w.modelId],
  );
  for (const { fn } of old.rows) {
    if (wanted.has(fn)) continue;
    await client.query(`DO $$ BEGIN EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', ${quoteLiteral(fn)}::oid::regprocedure); END $$`);
    await run(client, ml.deleteFrom('ml.generated_functions').where('fn', '=', Number(fn)));
  }
  await run(client, ml.updateTable('ml.models').set({ function_signature: null, probabilities_signature: null }).where('model_name', '=', w.modelName).where('id', '<>', w.modelId));
  const signatures: string[] = [];
  for (const f of fns) {
    const signature = `${f.name}(${f.argumentTypes})`;
    await createOrReplace(client, signature, f.create);
    await client.query(`COMMENT ON FUNCTION ${signature} IS ${quoteLiteral(f.comment)}`);
    await restrictExecute(client, signature, roles);
    await recordFunction(client, signature, w.modelId, null, 'public');
    const { rows } = await client.query<{ sig: string }>(`SELECT to_regprocedure($1)::text AS sig`, [signature]);
    signatures.push(rows[0]!.sig);
  }
  return signatures;
}

/**
 * Replaces a public function in place (views that call it keep working); when a retrained model
 * renamed a column or changed its result type, PostgreSQL cannot (42P13), and the old function,
 * ours (refuseForeignFunctions checked), is dropped first.
 */
async function createOrReplace(client: PoolClient, signature: string, create: string): Promise<void> {
  await client.query('SAVEPOINT replace_function');
  try {
    await client.query(create);
    await client.query('RELEASE SAVEPOINT replace_function');
    return;
  } catch (err) {
    if (sqlState(err) !== '42P13') throw err;
    await client.query('ROLLBACK TO SAVEPOINT replace_function');
  }
  await client.query(`DELETE FROM ml.generated_functions WHERE fn = to_regprocedure($1)::oid`, [signature]);
  await client.query(`DROP FUNCTION ${signature} CASCADE`);
  await client.query(create);
}

/**
 * A public function is created, replaced or dropped only when sqlml recorded it for this model:
 * any other function of the same name (any arguments, any owner) stops the write-back, since
 * replacing it would take over someone's function and an overload beside it could capture calls.
 */
async function refuseForeignFunctions(client: PoolClient, f: PublicFunction, modelName: string): Promise<void> {
  const [schema, name] = f.name.split('.').map((p) => p.replace(/^"|"$/g, '').replace(/""/g, '"')) as [string, string];
  // A built-in's name too: unqualified calls in every session would resolve to the better match.
  const { rows } = await client.query<{ sig: string; owner: string }>(
    `SELECT p.oid::regprocedure::text AS sig, pg_get_userbyid(p.proowner)::text AS owner
       FROM pg_proc p
      WHERE p.pronamespace IN (to_regnamespace(quote_ident($1)), 'pg_catalog'::regnamespace) AND p.proname = $2
        AND NOT EXISTS (SELECT 1 FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id
                         WHERE g.fn = p.oid AND m.model_name = $3)`,
    [schema, name, modelName],
  );
  const other = rows[0];
  if (other) {
    throw new UserError(
      `a function ${other.sig} (owner "${other.owner}") already exists and was not made by sqlml for model "${modelName}"; sqlml will not replace it or create one of the same name beside it: drop it, or train again with option "function_name"`,
    );
  }
}

/** Records a function the sidecar just created (by oid): only recorded functions are granted, revoked and dropped. */
export async function recordFunction(client: PoolClient, signature: string, modelId: string, trialId: number | null, kind: 'public' | 'internal'): Promise<void> {
  await run(client, ml.insertInto('ml.generated_functions')
    .values({ fn: sql<number>`to_regprocedure(${signature})::oid`, model_id: modelId, trial_id: trialId, kind })
    .onConflict((oc) => oc.column('fn').doUpdateSet((eb) => ({ model_id: eb.ref('excluded.model_id'), trial_id: eb.ref('excluded.trial_id'), kind: eb.ref('excluded.kind') }))));
}

/** Generated functions are executable by the model's owner and grantees only (and the sidecar, their owner). */
export async function restrictExecute(client: PoolClient, signature: string, roles: string[]): Promise<void> {
  await client.query(`REVOKE ALL ON FUNCTION ${signature} FROM PUBLIC`);
  await client.query(`GRANT EXECUTE ON FUNCTION ${signature} TO ${roles.map(quoteIdent).join(', ')}`);
}
