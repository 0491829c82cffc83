// Row types of the ml schema, generated with sql/schema.sql by `npm run schema:dump`; checked by test/schema.test.ts.
import type { Generated } from 'kysely';

export interface MlSchema {
  'ml.centroids': {
    model_id: string;
    trial_id: Generated<number>;
    centroid_id: number;
    ordinal: number;
    feature: string;
    numerical_value: number | null;
    standardized_value: number | null;
    categorical_value: unknown | null;
  };
  'ml.feature_info': {
    model_id: string;
    ordinal: number;
    input: string;
    type: string;
    min: number | null;
    max: number | null;
    mean: number | null;
    median: number | null;
    stddev: number | null;
    null_count: string;
    category_count: number | null;
    warning: string | null;
    kept_categories: number | null;
    other_share: number | null;
  };
  'ml.generated_functions': {
    fn: number;
    model_id: string;
    trial_id: number | null;
    kind: string;
  };
  'ml.grants': {
    model_name: string;
    grantee: string;
    granted_by: Generated<string>;
    granted_at: Generated<Date>;
  };
  'ml.jobs': {
    id: Generated<string>;
    kind: Generated<string>;
    model_id: string | null;
    parent_id: string | null;
    payload: unknown | null;
    training_query: string;
    status: Generated<string>;
    progress: unknown | null;
    requested_by: Generated<string>;
    attempts: Generated<number>;
    max_attempts: Generated<number>;
    run_after: Generated<Date>;
    locked_by: string | null;
    lease_expires_at: Date | null;
    heartbeat_at: Date | null;
    cancel_requested: Generated<boolean>;
    history: Generated<unknown>;
    created_at: Generated<Date>;
    started_at: Date | null;
    finished_at: Date | null;
    error: string | null;
    query_function: number | null;
    query_token: string | null;
    query_sql: string | null;
    estimated_rows: number | null;
    step_queries: string[] | null;
    step_fenced: boolean | null;
  };
  'ml.migrations': {
    version: number;
    name: string;
    applied_at: Generated<Date>;
  };
  'ml.model_names': {
    model_name: string;
  };
  'ml.models': {
    id: Generated<string>;
    model_name: string;
    version: number;
    model_type: string;
    options: Generated<unknown>;
    owner: Generated<string>;
    job_id: string | null;
    function_name: string | null;
    function_signature: string | null;
    scores_function: string | null;
    artifact: unknown | null;
    metrics: unknown | null;
    created_at: Generated<Date>;
    trained_at: Date | null;
    probabilities_signature: string | null;
  };
  'ml.output_tables': {
    relid: number;
    model_name: string;
    owner: string;
  };
  'ml.readers': {
    token: string;
    secret: string;
    created_at: Generated<Date>;
  };
  'ml.settings': {
    key: string;
    value: string;
  };
  'ml.tokens': {
    token: string;
    owner: string;
    issued_at: Generated<Date>;
    used_at: Date | null;
  };
  'ml.training_info': {
    model_id: string;
    training_run: number;
    iteration: number;
    loss: number;
    duration_ms: number;
    cluster_info: unknown | null;
    eval_loss: number | null;
    learning_rate: number | null;
    training_mode: string | null;
    bytes_moved: string | null;
  };
  'ml.trials': {
    model_id: string;
    trial_id: number;
    hyperparameters: unknown;
    metrics: unknown | null;
    status: string;
    error_message: string | null;
    is_optimal: Generated<boolean>;
    is_elbow: boolean | null;
    artifact: unknown | null;
    scores_function: string | null;
    explain_function: string | null;
    nearest_function: string | null;
  };
}
