import { UserError } from '../util/errors.ts';
import { explain, openReader, type LoadRequest } from './load.ts';

// In-database k-means reads no rows: it calls the job's step function (one Lloyd step's
// aggregate) in a reader session, after checking the function is the one ml_create_model made.

/** The step function's arguments (sql/api/in_database.sql, ml.make_step_function). */
const STEP_ARGUMENTS = ['double precision[]', 'double precision[]', 'double precision[]', 'integer[]', 'text[]', 'integer[]', 'integer[]', 'integer[]', 'double precision[]', 'boolean', 'integer[]', 'boolean'];
/** Its result columns, as pg_get_function_result shows them (two of one type swapped would skew the model silently). */
const STEP_RESULT = 'TABLE(c integer, cats double precision[], n double precision, sums double precision[], squares double precision, spread double precision, filled double precision[], column_squares double precision[])';

/**
 * The rows of a job's step function (in-database k-means: one Lloyd step's aggregate), in a
 * reader session, after checking that its text is still the one ml_create_model made for the
 * job's queries, columns and number of clusters. Only values are sent: `params` by position.
 */
export async function stepRows<T>(req: Pick<LoadRequest, 'source' | 'statementTimeoutMs'>, params: unknown[], o: { jit: boolean }): Promise<T[]> {
  const { rows } = await req.source.main.query<{ call: string | null; owner: string | null; intact: boolean | null; max_rows: number }>(
    `SELECT format('%I.%I', n.nspname, a.proname) AS call, pg_get_userbyid(a.proowner)::text AS owner,
            -- (the text is rebuilt only when it could be the one ml_create_model made: at most 1 MB)
            CASE WHEN a.prosecdef AND a.proowner = p.proowner AND length(a.prosrc) <= 1000000 AND pg_get_function_result(a.oid) = $4
                 THEN a.prosrc = ml.step_body_for(j.step_queries, j.query_token, p.oid::regprocedure, m.options, j.step_fenced) ELSE false END AS intact,
            (m.options ->> 'num_clusters')::int * cardinality(j.step_queries) AS max_rows
       FROM ml.jobs j JOIN ml.models m ON m.id = j.model_id JOIN pg_proc p ON p.oid = j.query_function
       LEFT JOIN pg_proc a ON a.pronamespace = p.pronamespace AND a.proname = 'a_' || j.query_token
                        AND pg_get_function_identity_arguments(a.oid) = $3
       LEFT JOIN pg_namespace n ON n.oid = a.pronamespace
      WHERE j.query_function = $1::oid AND j.query_token = $2 AND j.kind = 'train' AND j.step_queries IS NOT NULL`,
    [req.source.fn, req.source.token, STEP_ARGUMENTS.join(', '), STEP_RESULT],
  );
  const found = rows[0];
  if (!found?.call) throw new UserError('the step function of this in-database training no longer exists (it was dropped); train again with ml_create_model');
  if (found.owner !== req.source.role || !found.intact) {
    throw new UserError(`the step function of this training query (${found.call}) was changed after ml_create_model made it; train again with ml_create_model`);
  }
  const reader = await openReader(req.source, req.statementTimeoutMs);
  try {
    // a long generated expression keeps the JIT compiler busy, and it cannot be cancelled
    if (!o.jit) await reader.client.query('SET LOCAL jit = off');
    const placeholders = STEP_ARGUMENTS.map((t, i) => `$${i + 1}::${t}`).join(', ');
    // a row per centroid and query: more means the function is not the one it should be
    const r = await reader.client.query(`SELECT * FROM ${found.call}(${placeholders}) LIMIT ${found.max_rows + 1}`, params);
    await reader.client.query('COMMIT');
    if (r.rows.length > found.max_rows) throw new UserError(`the step function of this training query (${found.call}) returned more than ${found.max_rows} rows (one per cluster and query); train again with ml_create_model`);
    return r.rows as T[];
  } catch (err) {
    throw explain(err);
  } finally {
    await reader.close();
  }
}
