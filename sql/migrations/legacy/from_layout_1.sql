-- A database made by the first layout (sql/0NN_*.sql, migrations 1-12, or 1-13 of a
-- development build) reaches the state of 001_baseline.sql. Idempotent; runs once, in the
-- install transaction, before sql/api/*.sql is applied.

ALTER TABLE ml.jobs ADD COLUMN IF NOT EXISTS query_function oid, ADD COLUMN IF NOT EXISTS query_token text,
                    ADD COLUMN IF NOT EXISTS query_sql text, ADD COLUMN IF NOT EXISTS estimated_rows float8;

CREATE TABLE IF NOT EXISTS ml.readers (
  token       text NOT NULL,
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (token, secret)
);
CREATE TABLE IF NOT EXISTS ml.tokens (
  token      text PRIMARY KEY,
  owner      name NOT NULL,
  issued_at  timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz
);
CREATE TABLE IF NOT EXISTS ml.model_names (model_name text PRIMARY KEY);
CREATE TABLE IF NOT EXISTS ml.generated_functions (
  fn        oid PRIMARY KEY,
  model_id  bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  trial_id  int,
  kind      text NOT NULL CHECK (kind IN ('public', 'internal'))
);
CREATE INDEX IF NOT EXISTS generated_functions_model ON ml.generated_functions (model_id);
CREATE TABLE IF NOT EXISTS ml.output_tables (
  relid       oid PRIMARY KEY,
  model_name  text NOT NULL,
  owner       name NOT NULL
);

-- The functions that sqlml made so far become recorded ones. Users could write ml.models and
-- ml.trials in the first layout, so a stored name is trusted only for a function the installer
-- owns that has the shape of a generated one: a public function named after the model's own
-- function_name (never an ml_* API function) whose comment names that model version, or an
-- internal ml.m<model id>_*.
INSERT INTO ml.generated_functions (fn, model_id, trial_id, kind)
SELECT DISTINCT ON (fn) fn, model_id, trial_id, kind FROM (
  SELECT p.oid AS fn, m.id AS model_id, NULL::int AS trial_id, 'public' AS kind, 1 AS pref
    FROM ml.models m, unnest(ARRAY[m.function_signature, m.probabilities_signature]) AS s, pg_proc p
   WHERE s IS NOT NULL AND p.oid = to_regprocedure(s)
     AND p.pronamespace = (SELECT value FROM ml.settings WHERE key = 'api_schema')::regnamespace
     AND p.proname IN (m.function_name, m.function_name || '_probabilities') AND p.proname !~ '^ml_'
     AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')
     -- the comment the sidecar wrote (only a function's owner may set it) names this model version
     AND obj_description(p.oid, 'pg_proc') LIKE '% model ' || m.model_name || ' version ' || m.version || '%'
  UNION ALL
  SELECT p.oid, t.model_id, t.trial_id, 'internal', 2
    FROM ml.trials t, unnest(ARRAY[t.distances_function, t.explain_function]) AS s, pg_proc p
   WHERE s IS NOT NULL AND p.pronamespace = 'ml'::regnamespace AND p.proname = (parse_ident(s))[2]
     AND p.proname ~ ('^m' || t.model_id || '_')
     AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')) x
 ORDER BY fn, pref DESC
ON CONFLICT (fn) DO NOTHING;

-- What the first layout had and this one does not: triggers that executed stored text, the
-- wrappers of renamed validators, write policies (no role writes these tables now).
DROP TRIGGER IF EXISTS models_drop_functions ON ml.models;
DROP TRIGGER IF EXISTS trials_drop_function ON ml.trials;
DROP TRIGGER IF EXISTS grants_apply ON ml.grants;
DROP FUNCTION IF EXISTS ml.drop_generated_functions(), ml.drop_trial_function(), ml.apply_grant();
DROP FUNCTION IF EXISTS ml.validate_clustering_options_002(text, jsonb), ml.opt_num_clusters_002(jsonb),
                        ml.validate_supervised_options_007(text, jsonb);
DROP POLICY IF EXISTS models_insert ON ml.models;
DROP POLICY IF EXISTS models_update ON ml.models;
DROP POLICY IF EXISTS models_delete ON ml.models;
DROP POLICY IF EXISTS jobs_insert ON ml.jobs;
DROP POLICY IF EXISTS jobs_update ON ml.jobs;
DROP POLICY IF EXISTS grants_write ON ml.grants;
DROP POLICY IF EXISTS grants_delete ON ml.grants;

REVOKE INSERT, UPDATE, DELETE ON ml.models, ml.jobs, ml.grants FROM PUBLIC;
REVOKE UPDATE (job_id) ON ml.models FROM PUBLIC;
REVOKE UPDATE (status, cancel_requested, finished_at, error) ON ml.jobs FROM PUBLIC;
REVOKE USAGE ON SEQUENCE ml.models_id_seq, ml.jobs_id_seq FROM PUBLIC;

INSERT INTO ml.settings (key, value) VALUES ('reader_role', 'ml_reader') ON CONFLICT (key) DO NOTHING;
