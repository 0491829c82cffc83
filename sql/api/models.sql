-- Models as a role sees them: the ml_models and ml_jobs views, resolving 'name' or 'name@3' to
-- a ready version and a trial, the names they take, and what training wrote (centroids,
-- training and feature info, trials).

-- The views filtered by ownership; now they follow the tables' policies (readers included).
-- security_barrier: the view's filter runs before any function of the caller's WHERE clause,
-- which would otherwise see rows of other roles (the view's owner bypasses row-level security).
CREATE OR REPLACE VIEW @api@.ml_models WITH (security_barrier) AS
  SELECT m.model_name, m.version, m.model_type, j.status AS state, m.options, m.metrics, m.owner,
         m.created_at, m.trained_at, j.error, m.function_name, m.job_id
  FROM ml.models m LEFT JOIN ml.jobs j ON j.id = m.job_id
  WHERE ml.can_read_model(m.model_name, m.owner, current_user);
COMMENT ON VIEW @api@.ml_models IS 'sqlml: one row per model version (state queued/training/ready/failed/cancelled, options, metrics)';

CREATE OR REPLACE VIEW @api@.ml_jobs WITH (security_barrier) AS
  SELECT j.id, j.kind, m.model_name, m.version, j.status, j.progress, j.requested_by, j.attempts,
         j.created_at, j.started_at, j.finished_at, j.error, j.history, j.training_query
  FROM ml.jobs j LEFT JOIN ml.models m ON m.id = j.model_id
  WHERE pg_has_role(current_user, j.requested_by, 'USAGE');
COMMENT ON VIEW @api@.ml_jobs IS 'sqlml: the job queue as the caller may see it (status, progress, attempts, error, the training query as the requester wrote it)';

GRANT SELECT ON @api@.ml_models, @api@.ml_jobs TO PUBLIC;

-- Who else uses a model name or a function name (names are global: the generated function lives
-- in one schema). A function of that name that sqlml did not record for this model is a conflict.
CREATE OR REPLACE FUNCTION ml.name_conflict(p_model text, p_function text, p_caller name) RETURNS text
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  other name;
  f record;
BEGIN
  SELECT owner INTO other FROM ml.models WHERE model_name = p_model AND NOT pg_has_role(p_caller, owner, 'USAGE') LIMIT 1;
  IF other IS NOT NULL THEN
    RETURN format('model name "%s" is taken by role "%s"; choose another name', p_model, other);
  END IF;
  SELECT model_name INTO other FROM ml.models
   WHERE p_function IN (function_name, function_name || '_probabilities') AND model_name <> p_model LIMIT 1;
  IF other IS NOT NULL THEN
    RETURN format('function name "%s" is already a scoring function of model "%s"; set option "function_name" to another name', p_function, other);
  END IF;
  -- A built-in's name: a function of that name in a schema on everyone's search_path could be
  -- a better match than the built-in for unqualified calls, in every session.
  IF EXISTS (SELECT 1 FROM pg_proc WHERE pronamespace = 'pg_catalog'::regnamespace AND proname = p_function) THEN
    RETURN format('function name "%s" is the name of a PostgreSQL built-in function; set option "function_name" to another name', p_function);
  END IF;
  SELECT p.oid::regprocedure AS sig, pg_get_userbyid(p.proowner) AS owner INTO f FROM pg_proc p
   WHERE p.proname = p_function
     AND p.pronamespace = (SELECT value FROM ml.settings WHERE key = 'api_schema')::regnamespace
     AND NOT EXISTS (SELECT 1 FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id
                      WHERE g.fn = p.oid AND m.model_name = p_model)
   LIMIT 1;
  IF FOUND THEN
    RETURN format('a function %s (owner "%s") already exists and was not made by sqlml for model "%s"; set option "function_name" to another name', f.sig, f.owner, p_model);
  END IF;
  RETURN NULL;
END $$;

-- 'segments' -> latest ready version; 'segments@3' -> version 3 (which must be ready).
CREATE OR REPLACE FUNCTION ml.resolve_model(spec text) RETURNS ml.models
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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

-- Raised when a function meant for some model types is called on a model of another.
CREATE OR REPLACE FUNCTION ml.require_model_type(m ml.models, fn text, types text[], described text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF NOT m.model_type = ANY (types) THEN
    PERFORM ml.invalid(format('%s is for %s models; "%s" is a %s model', fn, described, m.model_name, m.model_type));
  END IF;
END $$;

-- The trial a call looks at: options->'trial_id', else the optimal one (what the model serves).
CREATE OR REPLACE FUNCTION ml.model_trial(m ml.models, options jsonb, allowed text[] DEFAULT '{}') RETURNS ml.trials
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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

CREATE OR REPLACE FUNCTION ml.strip_query(query text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT regexp_replace(query, '[\s;]+$', '')
$$;

-- Whether a value of this type reaches text, float8 or jsonb without any code of a user: a
-- catalog base type, an array of one, or a domain over one (casts from a domain are its base
-- type's). A user's enum, composite or range may have casts (to text, float8, json) whose
-- function its owner wrote; so may what a record or an anyarray holds (to_jsonb walks into them).
CREATE OR REPLACE FUNCTION ml.builtin_type(p_type oid) RETURNS boolean
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  t oid := p_type;
  r record;
BEGIN
  LOOP
    SELECT typtype, typbasetype, typelem, typnamespace, typcategory INTO r FROM pg_type WHERE oid = t;
    IF NOT FOUND THEN RETURN false; END IF;
    IF r.typtype = 'd' THEN t := r.typbasetype;                       -- a domain: its base type
    ELSIF r.typtype = 'b' AND r.typcategory = 'A' AND r.typelem <> 0 THEN t := r.typelem;  -- an array: its element type
    ELSE RETURN r.typtype = 'b' AND r.typnamespace = 'pg_catalog'::regnamespace;
    END IF;
  END LOOP;
END $$;

-- The columns of the caller's query, in order, and their types, from two queries that
-- PostgreSQL plans and never runs (WHERE false): no row is read, no function of the query runs.
CREATE OR REPLACE FUNCTION ml.query_columns(p_query text) RETURNS TABLE (ordinal int, name text, type oid)
LANGUAGE plpgsql AS $$
DECLARE
  -- one row of NULLs with the query's columns (sqlml_probe.* is the whole row, whatever the columns are called)
  empty text := pg_catalog.format(E'(SELECT q.* FROM (SELECT 1) d LEFT JOIN (SELECT * FROM (\n%s\n) q WHERE false) q ON true) sqlml_probe', p_query);
  names text[];
  types oid[];
BEGIN
  EXECUTE pg_catalog.format('SELECT ARRAY(SELECT pg_catalog.json_object_keys(pg_catalog.to_json(sqlml_probe.*))) FROM %s', empty) INTO names;
  IF pg_catalog.cardinality(names) = 0 THEN RETURN; END IF;
  EXECUTE pg_catalog.format('SELECT ARRAY[%s]::pg_catalog.oid[] FROM %s',
                            (SELECT pg_catalog.string_agg(pg_catalog.format('pg_catalog.pg_typeof(sqlml_probe.%I)::pg_catalog.oid', n), ', ' ORDER BY i)
                               FROM pg_catalog.unnest(names) WITH ORDINALITY AS u(n, i)), empty) INTO types;
  RETURN QUERY SELECT u.i::int, u.n, types[u.i] FROM pg_catalog.unnest(names) WITH ORDINALITY AS u(n, i);
END $$;

-- The caller's query with every column of a user's type turned into its text by the type's
-- output function (format('%s'), which consults no cast), so that what sqlml wraps around it
-- (::float8, ::text, to_jsonb) runs only catalog code in the caller's session.
CREATE OR REPLACE FUNCTION ml.safe_query(p_query text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE cols text;
BEGIN
  IF p_query IS NULL THEN RETURN NULL; END IF;
  SELECT pg_catalog.string_agg(CASE WHEN ml.builtin_type(c.type) THEN pg_catalog.format('q.%I', c.name)
                                    ELSE pg_catalog.format('pg_catalog.format(''%%s'', q.%I) AS %I', c.name, c.name) END, ', ' ORDER BY c.ordinal)
    INTO cols FROM ml.query_columns(p_query) c
   HAVING NOT pg_catalog.bool_and(ml.builtin_type(c.type));
  IF cols IS NULL THEN RETURN p_query; END IF;
  RETURN pg_catalog.format(E'SELECT %s FROM (\n%s\n) q', cols, p_query);
END $$;

-- The argument list that feeds a model's scoring function from a query aliased q: numeric
-- features cast to float8, boolean and date categories to their type, other categorical ones to
-- text: the generated functions' argument types. A model of more than 100 features (a
-- function's limit on arguments) takes the row as one jsonb.
CREATE OR REPLACE FUNCTION ml.feature_arguments(artifact jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN jsonb_array_length(artifact -> 'features') > 100 THEN 'pg_catalog.to_jsonb(q)' ELSE string_agg(format('q.%I::%s', f ->> 'name', CASE WHEN f ->> 'kind' = 'numeric' THEN 'float8'
                                                           WHEN f ->> 'type' = 'boolean' THEN 'boolean'
                                                           WHEN f ->> 'type' = 'date' THEN 'date' ELSE 'text' END),
                    ', ' ORDER BY o) END
  FROM jsonb_array_elements(artifact -> 'features') WITH ORDINALITY AS a(f, o)
$$;

-- Runs `sql` (which reads the user's query as subquery q); if a model feature is missing from
-- the query, raise naming it instead of PostgreSQL's "column q.x does not exist".
CREATE OR REPLACE FUNCTION ml.missing_feature(m ml.models, query text) RETURNS text
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

CREATE OR REPLACE FUNCTION ml.raise_missing_feature(m ml.models, query text, err text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE col text := ml.missing_feature(m, query);
BEGIN
  IF col IS NULL THEN RAISE EXCEPTION USING ERRCODE = '42703', MESSAGE = err; END IF;
  RAISE EXCEPTION USING ERRCODE = '42703',
    MESSAGE = format('the query has no column "%s", which model "%s" was trained on', col, m.model_name),
    HINT = format('the model''s features are: %s',
                  (SELECT string_agg(f ->> 'name', ', ') FROM jsonb_array_elements(m.artifact -> 'features') f));
END $$;

-- 008: supervised models in ml_predict (predicted_value, predicted_label, predicted_probs) and
-- ml_evaluate (BigQuery ML's regression and classification metrics), eval_loss in
-- ml_training_info, candidates in ml_trial_info. Functions whose result columns grow are
-- dropped and created again (the new columns come after the old ones, so positional readers
-- keep working).

-- A supervised trial's classes as text[], and the label column it was trained on.
CREATE OR REPLACE FUNCTION ml.class_labels(artifact jsonb) RETURNS text[] LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT array_agg(c ORDER BY o)
    FROM jsonb_array_elements_text(CASE WHEN jsonb_typeof(artifact -> 'classes') = 'array' THEN artifact -> 'classes' ELSE '[]' END)
         WITH ORDINALITY AS x(c, o)
$$;

CREATE OR REPLACE FUNCTION ml.label_column(artifact jsonb) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT artifact ->> 'label'
$$;

CREATE OR REPLACE FUNCTION @api@.ml_centroids(model_name text, standardize boolean DEFAULT false, trial_id int DEFAULT NULL)
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

-- training_mode and bytes_moved were added for in-database k-means (a changed result type needs the DROP).
DO $$ DECLARE f regprocedure := to_regprocedure(format('%I.ml_training_info(text)', @api_name@));
BEGIN
  IF f IS NOT NULL AND pg_get_function_result(f) NOT LIKE '%bytes_moved%' THEN
    DROP FUNCTION @api@.ml_training_info(text);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION @api@.ml_training_info(model_name text)
RETURNS TABLE (training_run int, iteration int, loss float8, duration_ms float8, cluster_info jsonb,
               eval_loss float8, learning_rate float8, training_mode text, bytes_moved bigint)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.training_run, t.iteration, t.loss, t.duration_ms, t.cluster_info, t.eval_loss, t.learning_rate, t.training_mode, t.bytes_moved
    FROM ml.training_info t WHERE t.model_id = m.id ORDER BY t.training_run, t.iteration;
END $$;
COMMENT ON FUNCTION @api@.ml_training_info(text) IS
  'sqlml: per training iteration: loss, eval_loss (supervised, with an evaluation split), learning rate, duration, cluster sizes and radii (k-means), where it ran and the bytes it brought to the sidecar (in-database k-means)';

-- kept_categories and other_share were added (a changed result type needs the DROP).
DO $$ DECLARE f regprocedure := to_regprocedure(format('%I.ml_feature_info(text)', @api_name@));
BEGIN
  IF f IS NOT NULL AND pg_get_function_result(f) NOT LIKE '%other_share%' THEN
    DROP FUNCTION @api@.ml_feature_info(text);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION @api@.ml_feature_info(model_name text)
RETURNS TABLE (input text, type text, min float8, max float8, mean float8, median float8, stddev float8,
               null_count bigint, category_count int, kept_categories int, other_share float8, warning text)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT f.input, f.type, f.min, f.max, f.mean, f.median, f.stddev, f.null_count, f.category_count,
           f.kept_categories, f.other_share, f.warning
    FROM ml.feature_info f WHERE f.model_id = m.id ORDER BY f.ordinal;
END $$;
COMMENT ON FUNCTION @api@.ml_feature_info(text) IS
  'sqlml: per input column of the training query: type, min, max, mean, median, stddev, NULL count, category count, categories kept and share of rows in (other) when the column overflowed max_categories';

CREATE OR REPLACE FUNCTION @api@.ml_trial_info(model_name text)
RETURNS TABLE (trial_id int, hyperparameters jsonb, davies_bouldin_index float8, mean_squared_distance float8,
               silhouette_score float8, calinski_harabasz_score float8, status text, error_message text,
               is_optimal boolean, is_elbow boolean,
               hparam_tuning_evaluation_metrics jsonb, training_loss float8, eval_loss float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE m ml.models := ml.resolve_model(model_name);
BEGIN
  RETURN QUERY
    SELECT t.trial_id, t.hyperparameters, (t.metrics ->> 'davies_bouldin_index')::float8,
           (t.metrics ->> 'mean_squared_distance')::float8, (t.metrics ->> 'silhouette_score')::float8,
           (t.metrics ->> 'calinski_harabasz_score')::float8, t.status, t.error_message, t.is_optimal, t.is_elbow,
           (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(coalesce(t.metrics, '{}')) e
             WHERE e.key = ANY (ml.metric_names('regression') || ml.metric_names('classification'))),
           (t.metrics ->> 'training_loss')::float8, (t.metrics ->> 'eval_loss')::float8
    FROM ml.trials t WHERE t.model_id = m.id ORDER BY t.trial_id;
END $$;
COMMENT ON FUNCTION @api@.ml_trial_info(text) IS
  'sqlml: one row per trial (a k of a num_clusters sweep, a candidate of an auto model): hyperparameters, metrics, which trial the model serves (is_optimal)';
