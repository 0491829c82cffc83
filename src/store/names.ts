import { quoteIdent } from '../db/connect.ts';

/** What a version's internal functions compute, each named after it. */
export type GeneratedKind = 'distances' | 'nearest' | 'scores' | 'contributions' | 'vector' | 'purchases' | 'alive' | 'projection';

/**
 * The one place generated functions are named. Internal ones live in schema ml, one per model
 * version (the served trial) or per trial: ml."m<id>_<kind>", ml."m<id>_t<trial>_<kind>". Public
 * ones live in the API schema under the model's function_name (and <function_name>_probabilities).
 */
export function generatedName(modelId: string, trial: { trialId: number; isOptimal: boolean }, kind: GeneratedKind): string {
  return `ml.${quoteIdent(trial.isOptimal ? `m${modelId}_${kind}` : `m${modelId}_t${trial.trialId}_${kind}`)}`;
}

export type PublicSuffix = '' | '_probabilities' | '_p_alive' | '_expected_purchases' | '_expected_spend' | '_clv';

export function publicName(apiSchema: string, functionName: string, suffix: PublicSuffix = ''): string {
  return `${quoteIdent(apiSchema)}.${quoteIdent(functionName + suffix)}`;
}
