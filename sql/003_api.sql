-- 003: the user-facing API (schema @api@): training requests, waiting, inspecting, scoring.
-- Every function runs with the caller's privileges; row-level security on ml.* decides what
-- the caller sees. Helpers that must see across owners are SECURITY DEFINER and say why.

CREATE VIEW @api@.ml_models AS
  SELECT m.model_name, m.version, m.model_type, j.status AS state, m.options, m.metrics, m.owner,
         m.created_at, m.trained_at, j.error, m.function_name, m.job_id
  FROM ml.models m LEFT JOIN ml.jobs j ON j.id = m.job_id
  WHERE pg_has_role(current_user, m.owner, 'USAGE');
COMMENT ON VIEW @api@.ml_models IS 'sqlml: one row per model version (state queued/training/ready/failed/cancelled, options, metrics)';

CREATE VIEW @api@.ml_jobs AS
  SELECT j.id, j.kind, m.model_name, m.version, j.status, j.progress, j.requested_by, j.attempts,
         j.created_at, j.started_at, j.finished_at, j.error, j.history
  FROM ml.jobs j LEFT JOIN ml.models m ON m.id = j.model_id
  WHERE pg_has_role(current_user, j.requested_by, 'USAGE');
COMMENT ON VIEW @api@.ml_jobs IS 'sqlml: the job queue as the caller may see it (status, progress, attempts, error)';

-- Who else uses a model name or a function name. SECURITY DEFINER: names are global (the
-- generated function lives in one schema), so the check must see every owner's models.
CREATE FUNCTION ml.name_conflict(p_model text, p_function text, p_caller name) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml AS $$
DECLARE other name;
BEGIN
  SELECT owner INTO other FROM ml.models WHERE model_name = p_model LIMIT 1;
  IF other IS NOT NULL AND NOT pg_has_role(p_caller, other, 'USAGE') THEN
    RETURN format('model name "%s" is taken by role "%s"; choose another name', p_model, other);
  END IF;
  SELECT model_name INTO other FROM ml.models
   WHERE function_name = p_function AND model_name <> p_model LIMIT 1;
  IF other IS NOT NULL THEN
    RETURN format('function name "%s" is already the scoring function of model "%s"; set option "function_name" to another name', p_function, other);
  END IF;
  IF EXISTS (SELECT 1 FROM pg_proc p
              WHERE p.proname = p_function
                AND p.pronamespace = (SELECT value FROM ml.settings WHERE key = 'api_schema')::regnamespace
                AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.function_signature = p.oid::regprocedure::text)) THEN
    RETURN format('a function named "%s" already exists and was not made by sqlml; set option "function_name" to another name', p_function);
  END IF;
  RETURN NULL;
END $$;

-- 'segments' -> latest ready version; 'segments@3' -> version 3 (which must be ready).
CREATE FUNCTION ml.resolve_model(spec text) RETURNS ml.models
LANGUAGE plpgsql STABLE AS $$
DECLARE
  name text := spec;
  ver int;
  m ml.models;
  st text;
BEGIN
  IF spec IS NULL THEN PERFORM ml.invalid('model name must not be NULL'); END IF;
  IF spec ~ '@[0-9]+$' THEN
    name := substring(spec FROM '^(.*)@[0-9]+$');
    ver := substring(spec FROM '@([0-9]+)$')::int;
  END IF;
  SELECT mm.* INTO m FROM ml.models mm JOIN ml.jobs j ON j.id = mm.job_id
   WHERE mm.model_name = name AND j.status = 'ready' AND (ver IS NULL OR mm.version = ver)
   ORDER BY mm.version DESC LIMIT 1;
  IF FOUND THEN RETURN m; END IF;
  SELECT j.status, mm.version INTO st, ver FROM ml.models mm LEFT JOIN ml.jobs j ON j.id = mm.job_id
   WHERE mm.model_name = name AND (ver IS NULL OR mm.version = ver)
   ORDER BY mm.version DESC LIMIT 1;
  IF st IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('model "%s" does not exist', spec),
      HINT = 'SELECT model_name, version, state FROM ml_models; lists the models you can use';
  END IF;
  RAISE EXCEPTION USING ERRCODE = '55000',
    MESSAGE = format('model "%s" has no ready version (version %s is %s)', spec, ver, st),
    HINT = 'wait for the training job with ml_wait(job_id), or see the error in ml_models';
END $$;

-- The trial a call looks at: options->'trial_id', else the optimal one (what the model serves).
CREATE FUNCTION ml.model_trial(m ml.models, options jsonb, allowed text[] DEFAULT '{}') RETURNS ml.trials
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t ml.trials;
  k text;
BEGIN
  IF options IS NOT NULL AND jsonb_typeof(options) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object (got %s)', options::text));
  END IF;
  FOR k IN SELECT jsonb_object_keys(coalesce(options, '{}')) LOOP
    IF k <> 'trial_id' AND NOT k = ANY (allowed) THEN
      PERFORM ml.invalid(format('unknown option "%s"; allowed: %s', k, array_to_string(ARRAY['trial_id'] || allowed, ', ')));
    END IF;
  END LOOP;
  IF options ? 'trial_id' THEN
    PERFORM ml.opt_int(options, 'trial_id', 1, 1000);
    SELECT * INTO t FROM ml.trials WHERE model_id = m.id AND trial_id = (options ->> 'trial_id')::int;
    IF NOT FOUND OR t.status <> 'succeeded' THEN
      PERFORM ml.invalid(format('model "%s" version %s has no successful trial %s; see ml_trial_info(''%s'')',
                                m.model_name, m.version, options ->> 'trial_id', m.model_name));
    END IF;
  ELSE
    SELECT * INTO t FROM ml.trials WHERE model_id = m.id AND is_optimal;
  END IF;
  RETURN t;
END $$;

CREATE FUNCTION @api@.ml_create_model(model_name text, model_type text, training_query text,
                                      options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
  mtype text := lower(trim(model_type));
  opts jsonb;
  fn text;
  conflict text;
  ver int;
  mid bigint;
  jid bigint;
BEGIN
  PERFORM ml.check_identifier('model name', model_name);
  IF mtype IS NULL OR mtype NOT IN ('kmeans', 'hdbscan') THEN
    PERFORM ml.invalid(format('unknown model_type "%s"; supported: kmeans, hdbscan', model_type));
  END IF;
  IF training_query IS NULL OR trim(training_query) = '' THEN
    PERFORM ml.invalid('training_query must be a SELECT statement, e.g. SELECT * FROM customers');
  END IF;
  opts := ml.validate_options(mtype, options);
  fn := coalesce(opts ->> 'function_name', model_name || '_predict');

  -- Versions of one name are numbered in order, whoever races.
  PERFORM pg_advisory_xact_lock(hashtext('sqlml.model:' || model_name));
  conflict := ml.name_conflict(model_name, fn, current_user);
  IF conflict IS NOT NULL THEN PERFORM ml.invalid(conflict); END IF;
  SELECT coalesce(max(m.version), 0) + 1 INTO ver FROM ml.models m WHERE m.model_name = ml_create_model.model_name;

  INSERT INTO ml.models (model_name, version, model_type, options, function_name)
  VALUES (model_name, ver, mtype, opts, fn) RETURNING id INTO mid;
  INSERT INTO ml.jobs (kind, model_id, training_query) VALUES ('train', mid, training_query) RETURNING id INTO jid;
  UPDATE ml.models SET job_id = jid WHERE id = mid;
  RETURN jid;
END $$;
COMMENT ON FUNCTION @api@.ml_create_model(text, text, text, jsonb) IS
  'sqlml: enqueue the training of a new version of a model; returns the job id (see ml_wait, ml_jobs)';

-- Waits by polling: a function cannot receive NOTIFY, and each statement in a volatile
-- function sees rows committed since it started.
CREATE FUNCTION @api@.ml_wait(job_id bigint, timeout interval DEFAULT '1 hour') RETURNS @api@.ml_jobs
LANGUAGE plpgsql AS $$
DECLARE
  j @api@.ml_jobs;
  own_xid bigint := txid_current_if_assigned();
  row_xid bigint;
  deadline timestamptz := clock_timestamp() + timeout;
  pause float8 := 0.01;
BEGIN
  SELECT xmin::text::bigint INTO row_xid FROM ml.jobs WHERE id = job_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('job %s does not exist (or belongs to another role)', job_id);
  END IF;
  IF own_xid IS NOT NULL AND row_xid = own_xid % 4294967296 THEN
    RAISE EXCEPTION USING ERRCODE = '25000',
      MESSAGE = format('job %s was enqueued in this transaction: commit first, then call ml_wait', job_id),
      HINT = 'the sidecar cannot see the job before COMMIT; in one statement use CALL ml_train(...)';
  END IF;
  LOOP
    SELECT * INTO j FROM @api@.ml_jobs v WHERE v.id = job_id;
    IF j.status IN ('ready', 'done') THEN RETURN j; END IF;
    IF j.status = 'failed' THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('job %s failed: %s', job_id, j.error);
    END IF;
    IF j.status = 'cancelled' THEN
      RAISE EXCEPTION USING ERRCODE = '57014', MESSAGE = format('job %s was cancelled', job_id);
    END IF;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION USING ERRCODE = '57014',
        MESSAGE = format('job %s is still %s after %s', job_id, j.status, timeout),
        HINT = 'is a sidecar running? start one with: sqlml worker';
    END IF;
    PERFORM pg_sleep(pause);
    pause := least(pause * 1.5, 0.25);
  END LOOP;
END $$;
COMMENT ON FUNCTION @api@.ml_wait(bigint, interval) IS
  'sqlml: wait (after COMMIT) until a job ends; returns its ml_jobs row, raises if it failed or was cancelled';

CREATE PROCEDURE @api@.ml_train(model_name text, model_type text, training_query text,
                                options jsonb DEFAULT '{}', INOUT job_id bigint DEFAULT NULL)
LANGUAGE plpgsql AS $$
BEGIN
  job_id := @api@.ml_create_model(model_name, model_type, training_query, options);
  COMMIT;
  PERFORM @api@.ml_wait(job_id, '1 day');
END $$;
COMMENT ON PROCEDURE @api@.ml_train(text, text, text, jsonb, bigint) IS
  'sqlml: CALL ml_train(...) enqueues, commits and waits in one statement (autocommit only)';

CREATE FUNCTION @api@.ml_cancel(job_id bigint) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE st text;
BEGIN
  SELECT status INTO st FROM ml.jobs WHERE id = job_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('job %s does not exist (or belongs to another role)', job_id);
  END IF;
  IF st = 'queued' THEN
    UPDATE ml.jobs SET status = 'cancelled', finished_at = now(), error = 'cancelled by ' || current_user WHERE id = job_id;
    RETURN true;
  ELSIF st IN ('training', 'running') THEN
    UPDATE ml.jobs SET cancel_requested = true WHERE id = job_id;   -- the sidecar stops between iterations
    RETURN true;
  END IF;
  RETURN false;
END $$;
COMMENT ON FUNCTION @api@.ml_cancel(bigint) IS
  'sqlml: cancel a queued job at once, or a running one between two iterations; false if it had already ended';

CREATE FUNCTION @api@.ml_centroids(model_name text, standardize boolean DEFAULT false, trial_id int DEFAULT NULL)
RETURNS TABLE (centroid_id int, feature text, numerical_value float8, categorical_value jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, CASE WHEN trial_id IS NULL THEN '{}'::jsonb ELSE jsonb_build_object('trial_id', trial_id) END);
BEGIN
  RETURN QUERY
    SELECT c.centroid_id, c.feature,
           CASE WHEN standardize THEN c.standardized_value ELSE c.numerical_value END,
           c.categorical_value
    FROM ml.centroids c WHERE c.model_id = m.id AND c.trial_id = t.trial_id
    ORDER BY c.centroid_id, c.ordinal;
END $$;
COMMENT ON FUNCTION @api@.ml_centroids(text, boolean, int) IS
  'sqlml: one row per (centroid, feature): numerical_value in original units (or standardized), categorical_value = category shares';

CREATE FUNCTION @api@.ml_training_info(model_name text)
RETURNS TABLE (training_run int, iteration int, loss float8, duration_ms float8, cluster_info jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.training_run, t.iteration, t.loss, t.duration_ms, t.cluster_info
    FROM ml.training_info t WHERE t.model_id = m.id ORDER BY t.training_run, t.iteration;
END $$;
COMMENT ON FUNCTION @api@.ml_training_info(text) IS
  'sqlml: per training iteration: loss (mean squared distance), duration, cluster sizes and radii';

CREATE FUNCTION @api@.ml_feature_info(model_name text)
RETURNS TABLE (input text, type text, min float8, max float8, mean float8, median float8, stddev float8,
               null_count bigint, category_count int, warning text)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT f.input, f.type, f.min, f.max, f.mean, f.median, f.stddev, f.null_count, f.category_count, f.warning
    FROM ml.feature_info f WHERE f.model_id = m.id ORDER BY f.ordinal;
END $$;
COMMENT ON FUNCTION @api@.ml_feature_info(text) IS
  'sqlml: per input column of the training query: type, min, max, mean, median, stddev, NULL count, category count';

-- The argument list that feeds a model's scoring function from a query aliased q: numeric
-- features cast to float8, categorical ones to text, exactly as the sidecar read them.
CREATE FUNCTION ml.feature_arguments(artifact jsonb) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
  SELECT string_agg(format('q.%I::%s', f ->> 'name', CASE WHEN f ->> 'kind' = 'numeric' THEN 'float8' ELSE 'text' END),
                    ', ' ORDER BY o)
  FROM jsonb_array_elements(artifact -> 'features') WITH ORDINALITY AS a(f, o)
$$;

-- Runs `sql` (which reads the user's query as subquery q); if a model feature is missing from
-- the query, raise naming it instead of PostgreSQL's "column q.x does not exist".
CREATE FUNCTION ml.missing_feature(m ml.models, query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE f jsonb;
BEGIN
  FOR f IN SELECT jsonb_array_elements(m.artifact -> 'features') LOOP
    BEGIN
      EXECUTE format('SELECT q.%I FROM (%s) q LIMIT 0', f ->> 'name', query);
    EXCEPTION WHEN undefined_column THEN
      RETURN f ->> 'name';
    END;
  END LOOP;
  RETURN NULL;
END $$;

CREATE FUNCTION ml.raise_missing_feature(m ml.models, query text, err text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE col text := ml.missing_feature(m, query);
BEGIN
  IF col IS NULL THEN RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = err; END IF;
  RAISE EXCEPTION USING ERRCODE = '42703',
    MESSAGE = format('the query has no column "%s", which model "%s" was trained on', col, m.model_name),
    HINT = format('the model''s features are: %s',
                  (SELECT string_agg(f ->> 'name', ', ') FROM jsonb_array_elements(m.artifact -> 'features') f));
END $$;

CREATE FUNCTION ml.strip_query(query text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT regexp_replace(query, '[\s;]+$', '')
$$;

CREATE FUNCTION @api@.ml_predict(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, centroid_id int, nearest_centroids_distance jsonb,
               membership_probability float8, outlier_score float8,
               predicted_value float8, predicted_label text, predicted_probs jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
  q text := ml.strip_query(query);
  nearest int := least((t.artifact ->> 'k')::int, 5);
BEGIN
  -- The distances are computed once per row by the generated function; the LATERAL subquery
  -- only sorts k numbers (a subquery is rescanned, not re-planned, per row). For density models
  -- the distances are to each cluster's nearest exemplar, and a row beyond the cluster's reach
  -- is noise (-1).
  RETURN QUERY EXECUTE format($q$
    SELECT to_jsonb(s.q), %5$s, n.nearest, %6$s, %7$s, NULL::float8, NULL::text, NULL::jsonb
    FROM (SELECT q, %1$s(%2$s) AS d FROM (%3$s) q) s
    CROSS JOIN LATERAL (
      SELECT (min(u.i) FILTER (WHERE u.r = 1))::int AS centroid_id, min(u.v) AS v,
             jsonb_agg(jsonb_build_object('centroid_id', u.i, 'distance', u.v) ORDER BY u.r) AS nearest
      FROM (SELECT v, i, row_number() OVER (ORDER BY v, i) AS r
              FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT %4$s) u) n
    CROSS JOIN LATERAL (SELECT (%8$L::jsonb ->> (n.centroid_id - 1))::float8 AS reach,
                               (%9$L::jsonb ->> (n.centroid_id - 1))::float8 AS pscale,
                               (%10$L::jsonb ->> (n.centroid_id - 1))::float8 AS oscale) c
  $q$, t.distances_function, ml.feature_arguments(t.artifact), q, nearest,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN n.centroid_id ELSE -1 END' ELSE 'n.centroid_id' END,
       CASE WHEN m.model_type = 'hdbscan' THEN 'CASE WHEN n.v <= c.reach THEN least(1, c.pscale / greatest(n.v, 1e-300)) ELSE 0 END' ELSE 'NULL::float8' END,
       CASE WHEN m.model_type = 'hdbscan' THEN '1 - least(1, c.oscale / greatest(n.v, 1e-300))' ELSE 'NULL::float8' END,
       coalesce(t.artifact -> 'reach', '[]'), coalesce(t.artifact -> 'probability_scale', '[]'), coalesce(t.artifact -> 'outlier_scale', '[]'));
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_predict(text, text, jsonb) IS
  'sqlml: score every row of a query inside PostgreSQL; input jsonb + centroid_id + nearest_centroids_distance (other columns are for other model families)';

-- With no query: the metrics computed at training time. With a query: score it in SQL
-- (Davies-Bouldin with the model's centroids, mean squared distance to the nearest one).
CREATE FUNCTION @api@.ml_evaluate(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (trial_id int, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, stability float8,
               num_clusters int, noise_fraction float8, dbcv float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
  q text := ml.strip_query(query);
BEGIN
  IF query IS NULL THEN
    RETURN QUERY SELECT t.trial_id, (t.metrics ->> 'davies_bouldin_index')::float8, (t.metrics ->> 'mean_squared_distance')::float8,
                        (t.metrics ->> 'silhouette_score')::float8, (t.metrics ->> 'calinski_harabasz_score')::float8,
                        (t.metrics ->> 'stability')::float8, (t.metrics ->> 'num_clusters')::int,
                        (t.metrics ->> 'noise_fraction')::float8, (t.metrics ->> 'dbcv')::float8;
    RETURN;
  END IF;
  IF m.model_type <> 'kmeans' THEN
    PERFORM ml.invalid(format('ml_evaluate with a query is available for kmeans models; for %s models call ml_evaluate(''%s'') for the training metrics', m.model_type, model_name));
  END IF;
  RETURN QUERY EXECUTE format($q$
    WITH a AS (
      SELECT n.c, n.v
      FROM (SELECT %1$s(%2$s) AS d FROM (%3$s) q) s
      CROSS JOIN LATERAL (SELECT i::int AS c, v FROM unnest(s.d) WITH ORDINALITY AS x(v, i) ORDER BY v, i LIMIT 1) n),
    per AS (SELECT c, avg(v) AS spread FROM a GROUP BY c),
    r AS (SELECT p.c, max((p.spread + o.spread) / ((%4$L::jsonb -> (p.c - 1) ->> (o.c - 1))::float8)) AS ratio
            FROM per p JOIN per o ON o.c <> p.c GROUP BY p.c)
    SELECT %5$s, (SELECT avg(ratio) FROM r)::float8, (SELECT avg(v * v) FROM a)::float8, NULL::float8, NULL::float8, NULL::float8,
           (SELECT count(*) FROM per)::int, 0::float8, NULL::float8
  $q$, t.distances_function, ml.feature_arguments(t.artifact), q, t.artifact -> 'centroid_distances', t.trial_id);
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_evaluate(text, text, jsonb) IS
  'sqlml: trial_id, davies_bouldin_index, mean_squared_distance, silhouette_score, calinski_harabasz_score, stability (training metrics, or scored on a query)';

GRANT SELECT ON @api@.ml_models, @api@.ml_jobs TO PUBLIC;
