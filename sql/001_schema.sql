-- 001: the ml schema: the job queue, model versions and everything a training writes back.
-- `@api@` is replaced by the (quoted) schema given to `sqlml install --schema` (default public).
-- Rows are private to the role that owns them (row-level security); the sidecar role owns the
-- tables, so it bypasses RLS and serves every role.

CREATE SCHEMA IF NOT EXISTS ml;

CREATE TABLE ml.settings (
  key   text PRIMARY KEY,
  value text NOT NULL
);

-- One row per model version. `artifact` holds what scoring replays (feature preparation and
-- centroids in model space); the generated SQL functions are compiled from it.
CREATE TABLE ml.models (
  id                  bigserial PRIMARY KEY,
  model_name          text NOT NULL,
  version             int  NOT NULL,
  model_type          text NOT NULL,
  options             jsonb NOT NULL DEFAULT '{}',
  owner               name NOT NULL DEFAULT current_user,
  job_id              bigint,
  function_name       text,            -- public scoring function, e.g. segments_predict
  function_signature  text,            -- regprocedure text, to drop or replace it
  distances_function  text,            -- internal per-version function (ml schema)
  artifact            jsonb,
  metrics             jsonb,
  created_at          timestamptz NOT NULL DEFAULT now(),
  trained_at          timestamptz,
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
  training_query    text NOT NULL,
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
  error             text
);
CREATE INDEX jobs_claimable ON ml.jobs (id) WHERE status IN ('queued', 'training', 'running');
CREATE INDEX jobs_parent ON ml.jobs (parent_id) WHERE parent_id IS NOT NULL;
ALTER TABLE ml.models ADD FOREIGN KEY (job_id) REFERENCES ml.jobs (id) ON DELETE SET NULL DEFERRABLE INITIALLY DEFERRED;

-- One row per trial (one k of a num_clusters sweep; a plain model has one trial). The optimal
-- trial is what the model serves by default; every trial has its own scoring function.
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
  distances_function  text,
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
  model_id      bigint NOT NULL REFERENCES ml.models (id) ON DELETE CASCADE,
  training_run  int NOT NULL,
  iteration     int NOT NULL,
  loss          float8 NOT NULL,
  duration_ms   float8 NOT NULL,
  cluster_info  jsonb,
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

-- Wake the sidecars: the payload is the job id only (NOTIFY payloads must stay < 8000 bytes,
-- and distinct payloads are not folded together within one transaction).
CREATE FUNCTION ml.notify_job() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('ml_jobs', NEW.id::text);
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_notify AFTER INSERT ON ml.jobs FOR EACH ROW EXECUTE FUNCTION ml.notify_job();

CREATE FUNCTION ml.notify_job_done() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IN ('ready', 'done', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status THEN
    PERFORM pg_notify('ml_job_done', NEW.id::text);
  END IF;
  IF NEW.cancel_requested AND NOT OLD.cancel_requested THEN
    PERFORM pg_notify('ml_cancel', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER jobs_notify_done AFTER UPDATE ON ml.jobs FOR EACH ROW EXECUTE FUNCTION ml.notify_job_done();

-- Dropping a model version drops its generated functions. SECURITY DEFINER because the
-- functions belong to the sidecar role; who may delete the row is decided by RLS.
CREATE FUNCTION ml.drop_generated_functions() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
BEGIN
  IF OLD.distances_function IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.distances_function);
  END IF;
  -- The public function serves the latest ready version; drop it only with its version.
  IF OLD.function_signature IS NOT NULL AND NOT EXISTS (
       SELECT 1 FROM ml.models m WHERE m.function_signature = OLD.function_signature AND m.id <> OLD.id) THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.function_signature);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER models_drop_functions AFTER DELETE ON ml.models FOR EACH ROW EXECUTE FUNCTION ml.drop_generated_functions();

CREATE FUNCTION ml.drop_trial_function() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
BEGIN
  IF OLD.distances_function IS NOT NULL THEN
    EXECUTE format('DROP FUNCTION IF EXISTS %s', OLD.distances_function);
  END IF;
  RETURN NULL;
END $$;
CREATE TRIGGER trials_drop_function AFTER DELETE ON ml.trials FOR EACH ROW EXECUTE FUNCTION ml.drop_trial_function();

-- Row-level security: a role sees and changes only what it (or a role it belongs to) owns.
ALTER TABLE ml.models ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.centroids ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.trials ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.training_info ENABLE ROW LEVEL SECURITY;
ALTER TABLE ml.feature_info ENABLE ROW LEVEL SECURITY;

CREATE POLICY own_models ON ml.models
  USING (pg_has_role(current_user, owner, 'USAGE'))
  WITH CHECK (owner = current_user);
CREATE POLICY own_jobs ON ml.jobs
  USING (pg_has_role(current_user, requested_by, 'USAGE'))
  WITH CHECK (requested_by = current_user);
CREATE POLICY own_centroids ON ml.centroids
  USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
CREATE POLICY own_trials ON ml.trials
  USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
CREATE POLICY own_training_info ON ml.training_info
  USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
CREATE POLICY own_feature_info ON ml.feature_info
  USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));

GRANT USAGE ON SCHEMA ml TO PUBLIC;
GRANT SELECT ON ml.settings TO PUBLIC;
GRANT SELECT, INSERT, DELETE ON ml.models TO PUBLIC;
GRANT UPDATE (job_id) ON ml.models TO PUBLIC;
GRANT SELECT, INSERT ON ml.jobs TO PUBLIC;
GRANT UPDATE (status, cancel_requested, finished_at, error) ON ml.jobs TO PUBLIC;
GRANT SELECT ON ml.centroids, ml.trials, ml.training_info, ml.feature_info TO PUBLIC;
GRANT USAGE ON SEQUENCE ml.models_id_seq, ml.jobs_id_seq TO PUBLIC;
