import type { Pool } from '../db/connect.ts';
import { UserError } from '../util/errors.ts';
import { ml, run } from './sql.ts';

/** The model version a job trains. */
export interface ModelRow {
  id: string;
  model_name: string;
  version: number;
  model_type: string;
  options: Record<string, unknown>;
  owner: string;
  function_name: string;
}

export async function loadModelRow(pool: Pool, modelId: string): Promise<ModelRow> {
  const [row] = await run(pool, ml.selectFrom('ml.models').select(['id', 'model_name', 'version', 'model_type', 'options', 'owner', 'function_name']).where('id', '=', modelId));
  if (!row) throw new UserError('the model of this job was dropped');
  return { ...row, options: row.options as Record<string, unknown>, function_name: row.function_name ?? `${row.model_name}_predict` };
}
