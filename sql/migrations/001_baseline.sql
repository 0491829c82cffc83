-- 001: the ml schema's state: tables, types, indexes, row-level security switched on, and the
-- table rights of PUBLIC (read only: every change goes through the API, sql/api/*.sql).
-- Runs once. Functions, views, policies and triggers are behaviour: sql/api/*.sql, re-applied
-- by every `sqlml install`. A database made by the first layout (sql/0NN_*.sql) reaches this
-- state through legacy/from_layout_1.sql instead.

CREATE SCHEMA IF NOT EXISTS ml;

CREATE TABLE ml.settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- One row per model version. `artifact` holds what scoring replays (feature preparation and
-- centroids, trees or weights in model space); the generated SQL functions are compiled from it.
CREATE TABLE ml.models (
  id                       bigserial PRIMARY KEY,
  model_name               text NOT NULL,
  version                  int  NOT NULL,
  model_type               text NOT NULL,
  options                  jsonb NOT NULL DEFAULT '{}',
  owner                    name NOT NULL DEFAULT current_user,
  job_id                   bigint,
  function_name            text,            -- public scoring function, e.g. segments_predict
  function_signature       text,            -- its regprocedure text, for display (ml.generated_functions decides)
  distances_function       text,            -- internal per-version function (ml schema)
  artifact                 jsonb,
  metrics                  jsonb,
  created_at               timestamptz NOT NULL DEFAULT now(),
  trained_at               timestamptz,
  probabilities_signature  text,            -- <function_name>_probabilities
  UNIQUE (model_name, version)
);

-- The queue. Status is the state machine of src/queue/job-sql.ts:
--   queued -> training (train jobs) | running (trial jobs) -> ready | done | failed | cancelled
-- A claimed job holds a lease (lease_expires_at) renewed by heartbeats; an expired lease
-- makes the job claimable again, which is how a dead sidecar's job is taken over.
CREATE TABLE ml.jobs (
  id                bigserial PRIMARY KEY,
  kind              text NOT NULL DEFAULT 'train' CHECK (kind IN ('train', 'trial')),
  model_id          bigint REFERENCES ml.models (id) ON DELETE CASCADE,
  -- a trial of a num_clusters sweep is a job of its own, so that every sidecar can take one;
  -- payload carries its k and the parent's feature preparation
  parent_id         bigint REFERENCES ml.jobs (id) ON DELETE CASCADE,
  payload           jsonb,
  training_query    text NOT NULL,          -- as the requester wrote it (shown, never run)
  status            text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'training', 'running', 'ready', 'done', 'failed', 'cancelled')),
  progress          jsonb,
  requested_by      name NOT NULL DEFAULT current_user,
  attempts          int NOT NULL DEFAULT 0,
  max_attempts      int NOT NULL DEFAULT 3,
  run_after         timestamptz NOT NULL DEFAULT now(),
  locked_by         text,
  lease_expires_at  timestamptz,
  heartbeat_at      timestamptz,
  cancel_requested  boolean NOT NULL DEFAULT false,
  history           jsonb NOT NULL DEFAULT '[]',   -- one entry per attempt: who, when, outcome
  created_at        timestamptz NOT NULL DEFAULT now(),
  started_at        timestamptz,
  finished_at       timestamptz,
  error             text,
  -- the requester's training function (docs/security.md), its guard token, the bound query it
  -- runs, and the planner's row estimate when it was enqueued
  query_function    oid,
  query_token       text,
  query_sql         text,
  estimated_rows    float8
);
CREATE INDEX jobs_claimable ON ml.jobs (id) WHERE status IN ('queued', 'training', 'running');
CREATE INDEX jobs_parent ON ml.jobs (parent_id) WHERE parent_id IS NOT NULL;
ALTER TABLE ml.models ADD FOREIGN KEY (job_id) REFERENCES ml.jobs (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

-- One row per trial (one k of a num_clusters sweep, one candidate of auto; a plain model has
-- one). The optimal trial is what the model serves by default; every trial has its own
-- internal scoring functions.
CREATE TABLE ml.trials (
  model_id            bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  trial_id            int NOT NULL,
  hyperparameters     jsonb NOT NULL,
  metrics             jsonb,
  status              text NOT NULL,            -- succeeded | failed
  error_message       text,
  is_optimal          boolean NOT NULL DEFAULT false,
  is_elbow            boolean,
  artifact            jsonb,
  distances_function  text,                     -- distances (clustering) or scores (supervised)
  explain_function    text,                     -- nearest centroids (k-means), contributions or model-space row (supervised)
  PRIMARY KEY (model_id, trial_id)
);

CREATE TABLE ml.centroids (
  model_id            bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  trial_id            int NOT NULL DEFAULT 1,
  centroid_id         int NOT NULL,
  ordinal             int NOT NULL,          -- feature position in training order
  feature             text NOT NULL,
  numerical_value     float8,                -- original units
  standardized_value  float8,                -- model space (z-score when standardized)
  categorical_value   jsonb,                 -- [{"category": ..., "value": share}]
  PRIMARY KEY (model_id, trial_id, centroid_id, ordinal)
);

CREATE TABLE ml.training_info (
  model_id       bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  training_run   int NOT NULL,
  iteration      int NOT NULL,
  loss           float8 NOT NULL,
  duration_ms    float8 NOT NULL,
  cluster_info   jsonb,
  eval_loss      float8,
  learning_rate  float8,
  PRIMARY KEY (model_id, training_run, iteration)
);

CREATE TABLE ml.feature_info (
  model_id        bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  ordinal         int NOT NULL,
  input           text NOT NULL,
  type            text NOT NULL,          -- numeric | categorical | dropped
  min             float8,
  max             float8,
  mean            float8,
  median          float8,
  stddev          float8,
  null_count      bigint NOT NULL,
  category_count  int,
  warning         text,
  PRIMARY KEY (model_id, ordinal)
);

-- ml_grant / ml_revoke: who may read a model (every version) and execute its functions.
CREATE TABLE ml.grants (
  model_name  text NOT NULL,
  grantee     name NOT NULL,
  granted_by  name NOT NULL DEFAULT current_user,
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model_name, grantee)
);

-- What a k-means version's internal nearest-centroid function returns.
CREATE TYPE ml.centroid_distance AS (centroid_id int, distance float8);
CREATE TYPE ml.nearest_centroids AS (centroid_id int, nearest jsonb);

-- Reader sessions allowed to call a training function right now (docs/security.md).
CREATE TABLE ml.readers (
  token       text NOT NULL,
  secret      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (token, secret)
);

-- Every guard token ever issued, to whom, and whether a job used it: a token names one
-- training function for good (rows are never deleted, so no token is issued or used twice).
CREATE TABLE ml.tokens (
  token      text PRIMARY KEY,
  owner      name NOT NULL,
  issued_at  timestamptz NOT NULL DEFAULT now(),
  used_at    timestamptz
);

-- One row per model name ever used: its lock orders the versions of one name and their
-- write-backs (a row lock needs UPDATE on the table, which no user role has; an advisory lock
-- key could be taken by anyone).
CREATE TABLE ml.model_names (
  model_name text PRIMARY KEY
);

-- Every function the sidecar created, for which model version (trial_id NULL: the model's
-- public functions, which follow the newest ready version). Only these are granted, revoked
-- and dropped.
CREATE TABLE ml.generated_functions (
  fn        oid PRIMARY KEY,
  model_id  bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  trial_id  int,
  kind      text NOT NULL CHECK (kind IN ('public', 'internal'))
);
CREATE INDEX generated_functions_model ON ml.generated_functions (model_id);

-- Every output_table the sidecar created (owned by the sidecar's role, SELECT for the owner).
CREATE TABLE ml.output_tables (
  relid       oid PRIMARY KEY,
  model_name  text NOT NULL,
  owner       name NOT NULL
);

-- Row-level security: a role sees what it (or a role it belongs to) owns, and the models
-- granted to it; the policies are in sql/api/sharing.sql. No role but the owner of these
-- tables (the sidecar's) writes them.
ALTER TABLE ml.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.centroids ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.trials ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.training_info ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.feature_info ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.grants ENABLE ROW LEVEL SECURITY;

GRANT USAGE ON SCHEMA ml TO PUBLIC;
GRANT SELECT ON ml.settings, ml.models, ml.jobs, ml.centroids, ml.trials, ml.training_info, ml.feature_info, ml.grants TO PUBLIC;

INSERT INTO ml.settings (key, value) VALUES ('reader_role', 'ml_reader');
