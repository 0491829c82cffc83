-- 013: the security model (docs/security.md). Every role but the installer is untrusted.
--   * A training query is checked at enqueue time, in the requester's own session, by
--     PostgreSQL (parsed as one SELECT; a missing table or right fails at once) and becomes a
--     SECURITY DEFINER function owned by the requester that returns its rows: inside it
--     everything runs as the requester (row-level security included), and PostgreSQL refuses
--     SET ROLE / RESET ROLE in it. (A PL/pgSQL body records no dependency on the tables, so they
--     can be dropped and made again while a function waits.) The sidecar calls that function over a
--     connection of the reader role, which is a member of no role and owns nothing, in a READ
--     ONLY transaction. Every reader session may execute every such function, so each returns
--     rows only in the one session the sidecar registered for it (ml.reading: a secret given at
--     connection start-up, never in any query text).
--   * Users never write ml.* directly: the API calls SECURITY DEFINER functions that validate
--     everything and learn who calls from session_user (ml.acting_as).
--   * Generated functions are recorded by oid in ml.generated_functions when the sidecar creates
--     them; only those are granted, revoked and dropped. No stored text is ever executed.

ALTER TABLE ml.jobs ADD COLUMN query_function oid, ADD COLUMN query_token text, ADD COLUMN query_sql text, ADD COLUMN estimated_rows float8;

-- Reader sessions allowed to read a training view right now (rows written by the sidecar only).
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
-- public functions, which follow the newest ready version).
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

-- The functions that sqlml made before this migration become recorded ones. Users could write
-- ml.models and ml.trials until now, so a stored name is trusted only for a function the
-- installer owns that has the shape of a generated one: a public function named after the
-- model's own function_name (never an ml_* API function), or an internal ml.m<model id>_*.
INSERT INTO ml.generated_functions (fn, model_id, trial_id, kind)
SELECT DISTINCT ON (fn) fn, model_id, trial_id, kind FROM (
  SELECT p.oid AS fn, m.id AS model_id, NULL::int AS trial_id, 'public' AS kind, 1 AS pref
    FROM ml.models m, unnest(ARRAY[m.function_signature, m.probabilities_signature]) AS s, pg_proc p
   WHERE s IS NOT NULL AND p.oid = to_regprocedure(s)
     AND p.pronamespace = (SELECT value FROM ml.settings WHERE key = 'api_schema')::regnamespace
     AND p.proname IN (m.function_name, m.function_name || '_probabilities') AND p.proname !~ '^ml_'
     AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')
  UNION ALL
  SELECT p.oid, t.model_id, t.trial_id, 'internal', 2
    FROM ml.trials t, unnest(ARRAY[t.distances_function, t.explain_function]) AS s, pg_proc p
   WHERE s IS NOT NULL AND p.pronamespace = 'ml'::regnamespace AND p.proname = (parse_ident(s))[2]
     AND p.proname ~ ('^m' || t.model_id || '_')
     AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')) x
 ORDER BY fn, pref DESC;

-- The triggers that executed stored text (function names) as the table owner go away; the
-- definer functions below do the same work from recorded oids.
DROP TRIGGER models_drop_functions ON ml.models;
DROP FUNCTION ml.drop_generated_functions();
DROP TRIGGER trials_drop_function ON ml.trials;
DROP FUNCTION ml.drop_trial_function();
DROP TRIGGER grants_apply ON ml.grants;
DROP FUNCTION ml.apply_grant();

-- No direct writes: reads only, filtered by the row-level security of 001/004.
REVOKE INSERT, UPDATE, DELETE ON ml.models, ml.jobs, ml.grants FROM PUBLIC;
REVOKE UPDATE (job_id) ON ml.models FROM PUBLIC;
REVOKE UPDATE (status, cancel_requested, finished_at, error) ON ml.jobs FROM PUBLIC;
REVOKE USAGE ON SEQUENCE ml.models_id_seq, ml.jobs_id_seq FROM PUBLIC;
REVOKE ALL ON ml.readers, ml.tokens, ml.model_names, ml.generated_functions, ml.output_tables FROM PUBLIC;

-- Earlier definer functions name pg_temp last too (unlisted, it would be searched first).
ALTER FUNCTION ml.can_read_model(text, name, name) SET search_path = pg_catalog, ml, pg_temp;

-- Until the end of the transaction, this model name is ours (the installer's code only).
CREATE FUNCTION ml.lock_model_name(p_model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  INSERT INTO ml.model_names (model_name) VALUES (p_model) ON CONFLICT DO NOTHING;
  PERFORM 1 FROM ml.model_names WHERE model_name = p_model FOR UPDATE;
END $$;
REVOKE ALL ON FUNCTION ml.lock_model_name(text) FROM PUBLIC;

CREATE FUNCTION ml.reader_role() RETURNS name LANGUAGE sql STABLE AS $$
  SELECT value::name FROM ml.settings WHERE key = 'reader_role'
$$;

CREATE FUNCTION ml.role_oid(r name) RETURNS oid LANGUAGE sql STABLE AS $$
  SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r
$$;

-- Who calls a definer function: the API passes current_user, and the session must be able to
-- act as that role (SET ROLE to it). The reader role never acts: it must own nothing.
CREATE FUNCTION ml.acting_as(claimed name) RETURNS name LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF claimed IS NULL OR ml.role_oid(claimed) IS NULL OR NOT pg_has_role(session_user, claimed, 'MEMBER') THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('role "%s" cannot act as role "%s"', session_user, claimed);
  END IF;
  IF claimed = ml.reader_role() OR session_user = ml.reader_role() THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('the reader role "%s" cannot use sqlml', ml.reader_role());
  END IF;
  RETURN claimed;
END $$;

-- The schema that holds a role's training views: made by the installer, the role may create
-- views in it (and nothing there is referenced by name; jobs record the view's oid).
CREATE FUNCTION ml.request_schema(p_role name) RETURNS name
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE s name;
BEGIN
  PERFORM ml.acting_as(p_role);
  s := 'ml_q_' || ml.role_oid(p_role);
  IF EXISTS (SELECT 1 FROM pg_namespace n WHERE n.nspname = s
              AND n.nspowner <> (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('schema %I exists but was not made by sqlml (owner "%s"); an administrator must drop or rename it', s,
                       (SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = s));
  END IF;
  IF to_regnamespace(quote_ident(s)) IS NULL THEN
    BEGIN
      EXECUTE format('CREATE SCHEMA %I', s);
    EXCEPTION WHEN duplicate_schema OR unique_violation THEN
      RETURN s;  -- made by a concurrent call of the same role
    END;
    EXECUTE format('COMMENT ON SCHEMA %I IS %L', s, format('sqlml: the training queries of role %s, one view per training job', p_role));
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', s, p_role);
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO %I', s, ml.reader_role());
  END IF;
  RETURN s;
END $$;

-- A fresh guard token for the calling role (the only way to get one: ml.enqueue_training
-- accepts only an unused token issued to the function's owner).
CREATE FUNCTION ml.issue_token(p_role name) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE t text := replace(gen_random_uuid()::text, '-', '');
BEGIN
  PERFORM ml.acting_as(p_role);
  INSERT INTO ml.tokens (token, owner) VALUES (t, p_role);
  RETURN t;
END $$;

-- The guard of every training function: true only in the reader session the sidecar registered
-- for it (the secret was given at that connection's start-up, never in query text).
CREATE FUNCTION ml.reading(p_token text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ml.readers r
                  WHERE r.token = p_token AND r.secret = current_setting('sqlml.reader_secret', true))
$$;

-- The body of a training function (ml.enqueue_training and the sidecar check that it is exactly
-- this): the guard first, then the query, which is one complete statement (checked), so it
-- cannot close the parentheses; the newlines end a trailing -- comment.
CREATE FUNCTION ml.reader_function_body(p_query text, p_token text) RETURNS text LANGUAGE sql IMMUTABLE AS $$
  SELECT format(E'#variable_conflict use_column\nBEGIN\n  IF ml.reading(%L) THEN\n    RETURN QUERY SELECT * FROM (\n%s\n) q;\n  END IF;\nEND',
                p_token, ml.strip_query(p_query))
$$;

-- Name, type and options of a training request, checked; returns the canonical options.
CREATE FUNCTION ml.validate_request(p_model text, p_type text, p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE AS $$
DECLARE
  mtype text := lower(trim(p_type));
  opts jsonb;
  fn text;
BEGIN
  PERFORM ml.check_identifier('model name', p_model);
  IF mtype IS NULL OR NOT mtype = ANY (ARRAY['kmeans', 'hdbscan'] || ml.supervised_types()) THEN
    PERFORM ml.invalid(format('unknown model_type "%s"; supported: %s', p_type,
                              array_to_string(ARRAY['kmeans', 'hdbscan'] || ml.supervised_types(), ', ')));
  END IF;
  opts := ml.validate_options(mtype, p_options);
  fn := coalesce(opts ->> 'function_name', p_model || '_predict');
  IF mtype IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto') AND octet_length(fn) > 49 THEN
    PERFORM ml.invalid(format('function name "%s" is too long for a classifier: "%s_probabilities" must fit in 63 bytes; set option "function_name" to a shorter name', fn, fn));
  END IF;
  RETURN opts;
END $$;

-- output_table: [schema, table]; unqualified names go to the API schema.
CREATE FUNCTION ml.output_table_name(opts jsonb) RETURNS text[] LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN opts ->> 'output_table' IS NULL THEN NULL
              WHEN strpos(opts ->> 'output_table', '.') > 0 THEN string_to_array(opts ->> 'output_table', '.')
              ELSE ARRAY[(SELECT value FROM ml.settings WHERE key = 'api_schema'), opts ->> 'output_table'] END
$$;

-- An output_table goes where its requester may create tables, never into a temporary or a
-- system schema, and never over a table that sqlml did not write for this model.
CREATE FUNCTION ml.check_output_table(p_requester name, p_model text, opts jsonb) RETURNS void
LANGUAGE plpgsql STABLE AS $$
DECLARE
  t text[] := ml.output_table_name(opts);
  nsp oid;
  rel oid;
BEGIN
  IF t IS NULL THEN RETURN; END IF;
  IF t[1] ~ '^pg_' OR t[1] IN ('information_schema', 'ml') OR t[1] ~ '^ml_q_' THEN
    PERFORM ml.invalid(format('option "output_table" cannot name a table in schema "%s"; use a schema of your own, e.g. "analytics.%s"', t[1], t[2]));
  END IF;
  nsp := to_regnamespace(quote_ident(t[1]));
  IF nsp IS NULL THEN
    PERFORM ml.invalid(format('option "output_table": schema "%s" does not exist', t[1]));
  END IF;
  IF NOT has_schema_privilege(p_requester, nsp, 'CREATE') THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('option "output_table": role "%s" may not create tables in schema "%s"', p_requester, t[1]),
      HINT = format('GRANT CREATE ON SCHEMA %I TO %I; or choose another schema', t[1], p_requester);
  END IF;
  SELECT c.oid INTO rel FROM pg_class c WHERE c.relnamespace = nsp AND c.relname = t[2];
  IF rel IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ml.output_tables o WHERE o.relid = rel AND o.model_name = p_model AND o.owner = p_requester) THEN
    PERFORM ml.invalid(format('option "output_table": %I.%I already exists (owner "%s") and was not written by sqlml for model "%s"; choose another name or drop it',
                              t[1], t[2], (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = rel), p_model));
  END IF;
END $$;

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

-- The one way a training request enters the queue: validates everything again (it may be
-- called directly), and takes the requester from the training function's owner, whom the
-- session must be able to act as.
CREATE FUNCTION ml.enqueue_training(p_function regprocedure, p_token text, p_estimate float8,
                                    p_model text, p_type text, p_options jsonb, p_query text, p_query_sql text)
RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  requester name;
  mtype text := lower(trim(p_type));
  opts jsonb := ml.validate_request(p_model, p_type, p_options);
  fn text := coalesce(opts ->> 'function_name', p_model || '_predict');
  conflict text;
  ver int;
  mid bigint;
  jid bigint;
BEGIN
  SELECT pg_get_userbyid(p.proowner) INTO requester
    FROM pg_proc p
   WHERE p.oid = p_function AND p.prosecdef AND p.proretset AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
     AND p.pronamespace = to_regnamespace('ml_q_' || ml.role_oid(pg_get_userbyid(p.proowner)))
     AND p.prosrc = ml.reader_function_body(p_query_sql, p_token)
     AND NOT has_function_privilege('public', p.oid, 'EXECUTE');
  IF requester IS NULL OR EXISTS (SELECT 1 FROM ml.jobs WHERE query_function = p_function) THEN
    PERFORM ml.invalid('the training query must be given as ml_create_model makes it');
  END IF;
  UPDATE ml.tokens SET used_at = now() WHERE token = p_token AND owner = requester AND used_at IS NULL;
  IF NOT FOUND THEN
    PERFORM ml.invalid('the training query must be given as ml_create_model makes it (its token was not issued to its owner, or was used)');
  END IF;
  PERFORM ml.acting_as(requester);
  PERFORM ml.check_output_table(requester, p_model, opts);

  -- Versions of one name are numbered in order, whoever races.
  PERFORM ml.lock_model_name(p_model);
  conflict := coalesce(ml.name_conflict(p_model, fn, requester), ml.name_conflict(p_model, fn || '_probabilities', requester));
  IF conflict IS NOT NULL THEN PERFORM ml.invalid(conflict); END IF;
  SELECT coalesce(max(m.version), 0) + 1 INTO ver FROM ml.models m WHERE m.model_name = p_model;

  INSERT INTO ml.models (model_name, version, model_type, options, function_name, owner)
  VALUES (p_model, ver, mtype, opts, fn, requester) RETURNING id INTO mid;
  INSERT INTO ml.jobs (kind, model_id, training_query, requested_by, query_function, query_token, query_sql, estimated_rows)
  VALUES ('train', mid, p_query, requester, p_function, p_token, p_query_sql,
          CASE WHEN p_estimate BETWEEN 0 AND 1e12 THEN p_estimate ELSE 0 END) RETURNING id INTO jid;
  UPDATE ml.models SET job_id = jid WHERE id = mid;
  RETURN jid;
END $$;

-- The caller's training functions of jobs that have ended (of one model: all of them) are no
-- longer needed; only their owner may drop them.
CREATE FUNCTION ml.drop_finished_queries(p_model text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT p.oid::regprocedure FROM ml.jobs j JOIN pg_proc p ON p.oid = j.query_function LEFT JOIN ml.models m ON m.id = j.model_id
     WHERE j.kind = 'train' AND p.proowner = ml.role_oid(current_user)
       AND (CASE WHEN p_model IS NULL THEN j.status IN ('ready', 'failed', 'cancelled') ELSE m.model_name = p_model END)
  LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS %s', f);
  END LOOP;
END $$;

-- The pieces of ml_create_model that build SQL, with the search_path pinned (they run as the
-- caller, but no name in them can resolve to a function a user planted); only the caller's
-- query text itself is resolved with the caller's search_path.
CREATE FUNCTION ml.training_view_sql(p_schema name, p_token text, p_query text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format(E'CREATE VIEW %I.%I AS SELECT * FROM (\n%s\n) q', p_schema, 'v_' || p_token, p_query)
$$;

CREATE FUNCTION ml.view_of(p_schema name, p_token text) RETURNS regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT to_regclass(format('%I.%I', p_schema, 'v_' || p_token))
$$;

-- PostgreSQL's deparse of the view with only the catalog on the path: every other name qualified.
CREATE FUNCTION ml.bound_query(p_view regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT pg_get_viewdef(p_view, false)
$$;

CREATE FUNCTION ml.estimated_rows(p_view regclass) RETURNS float8
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE plan json;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM %s', p_view) INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;

-- Makes the caller's training function from the view's columns and the bound query, drops the
-- view, and lets the reader role (only) execute the function.
CREATE FUNCTION ml.make_training_function(p_view regclass, p_token text, p_bound text, p_schemas name[]) RETURNS regprocedure
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s name := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_view);
  columns text := (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = p_view AND a.attnum > 0 AND NOT a.attisdropped);
  f regprocedure;
BEGIN
  EXECUTE format('DROP VIEW %s', p_view);
  -- The caller's schemas, between the catalog and pg_temp: functions the query calls (which may
  -- name objects unqualified) find what they find in the caller's own session.
  EXECUTE format('CREATE FUNCTION %I.%I() RETURNS TABLE (%s) LANGUAGE plpgsql SECURITY DEFINER SET search_path = %s AS %L',
                 s, 'q_' || p_token, columns,
                 concat_ws(', ', 'pg_catalog', (SELECT string_agg(quote_ident(x), ', ' ORDER BY o) FROM unnest(p_schemas) WITH ORDINALITY AS u(x, o)), 'pg_temp'),
                 ml.reader_function_body(p_bound, p_token));
  f := to_regprocedure(format('%I.%I()', s, 'q_' || p_token));
  EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
  EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, ml.reader_role());
  RETURN f;
END $$;

CREATE FUNCTION ml.refuse_view_error(p_state text, p_message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_state = '42701' THEN
    PERFORM ml.invalid(format('the training query has two columns named "%s"; give them distinct names with AS',
                              substring(p_message FROM 'column "(.*)" specified more than once')));
  END IF;
  PERFORM ml.invalid(format('training_query must be one SELECT statement that only reads data: %s', p_message));
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_create_model(model_name text, model_type text, training_query text,
                                                 options jsonb DEFAULT '{}') RETURNS bigint
LANGUAGE plpgsql AS $$
-- Every call here is schema-qualified: this function runs with the caller's search_path, which
-- the caller's query text needs and nothing else may use.
DECLARE
  q text := ml.strip_query(training_query);
  token text;
  s name;
  v regclass;
  bound text;
  estimate float8;
  c refcursor;
BEGIN
  PERFORM ml.validate_request(model_name, model_type, options);
  IF ml.strip_query(pg_catalog.btrim(coalesce(q, ''))) OPERATOR(pg_catalog.=) '' THEN
    PERFORM ml.invalid('training_query must be a SELECT statement, e.g. SELECT * FROM customers');
  END IF;
  -- Parsed and planned (not run) as the caller: a missing table or column, several statements,
  -- or a statement that is not a query, raise here and now.
  BEGIN
    OPEN c FOR EXECUTE q;
    CLOSE c;
  EXCEPTION WHEN invalid_cursor_definition THEN
    PERFORM ml.invalid('training_query must be exactly one SELECT statement (no ";" between statements, no INSERT, UPDATE, DELETE or SELECT INTO)');
  END;
  PERFORM ml.drop_finished_queries();
  s := ml.request_schema(current_user);
  token := ml.issue_token(current_user);
  -- A view, for a moment: PostgreSQL names and types the columns, refuses what a view refuses,
  -- and deparses the query with every name bound.
  BEGIN
    EXECUTE ml.training_view_sql(s, token, q);
  EXCEPTION WHEN duplicate_column OR feature_not_supported OR syntax_error OR invalid_table_definition THEN
    PERFORM ml.refuse_view_error(SQLSTATE, SQLERRM);
  END;
  v := ml.view_of(s, token);
  bound := ml.bound_query(v);
  estimate := ml.estimated_rows(v);
  RETURN ml.enqueue_training(ml.make_training_function(v, token, bound, pg_catalog.current_schemas(false)), token,
                             estimate, model_name, model_type, options, training_query, bound);
END $$;
COMMENT ON FUNCTION @api@.ml_create_model(text, text, text, jsonb) IS
  'sqlml: enqueue the training of a new version of a model; returns the job id (see ml_wait, ml_jobs)';

-- ml_wait reads ml.jobs under its row-level security: the requester and the model's grantees.
CREATE OR REPLACE FUNCTION @api@.ml_wait(job_id bigint, timeout interval DEFAULT '1 hour') RETURNS @api@.ml_jobs
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
    SELECT jj.id, jj.kind, m.model_name, m.version, jj.status, jj.progress, jj.requested_by, jj.attempts,
           jj.created_at, jj.started_at, jj.finished_at, jj.error, jj.history
      INTO j FROM ml.jobs jj LEFT JOIN ml.models m ON m.id = jj.model_id WHERE jj.id = ml_wait.job_id;
    IF j.status IN ('ready', 'done') THEN RETURN j; END IF;
    IF j.status = 'failed' THEN
      RAISE EXCEPTION USING ERRCODE = 'P0001', MESSAGE = format('job %s failed: %s', job_id, j.error);
    END IF;
    IF j.status = 'cancelled' THEN
      RAISE EXCEPTION USING ERRCODE = '57014', MESSAGE = format('job %s was cancelled', job_id);
    END IF;
    IF j.status IS NULL THEN
      RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('job %s no longer exists (its model was dropped)', job_id);
    END IF;
    IF clock_timestamp() > deadline THEN
      RAISE EXCEPTION USING ERRCODE = '57014',
        MESSAGE = format('job %s is still %s after %s', job_id, j.status, timeout),
        HINT = CASE WHEN j.status = 'queued' THEN 'is a sidecar running? start one with: sqlml worker'
                    ELSE 'a sidecar is working on it; see its progress in ml_jobs' END;
    END IF;
    PERFORM pg_sleep(pause);
    pause := least(pause * 1.5, 0.25);
  END LOOP;
END $$;

CREATE FUNCTION ml.cancel_job(p_job bigint, p_caller name) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE st text;
BEGIN
  PERFORM ml.acting_as(p_caller);
  SELECT status INTO st FROM ml.jobs WHERE id = p_job AND pg_has_role(p_caller, requested_by, 'USAGE') FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('job %s does not exist (or belongs to another role)', p_job);
  END IF;
  IF st = 'queued' THEN
    UPDATE ml.jobs SET status = 'cancelled', finished_at = now(), error = 'cancelled by ' || p_caller WHERE id = p_job;
    RETURN true;
  ELSIF st IN ('training', 'running') THEN
    UPDATE ml.jobs SET cancel_requested = true WHERE id = p_job;   -- the sidecar stops its load or its iterations
    RETURN true;
  END IF;
  RETURN false;
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_cancel(job_id bigint) RETURNS boolean
LANGUAGE sql AS $$ SELECT ml.cancel_job(job_id, current_user) $$;

-- Whether p_user may share and drop a model: it owns (or is a member of the owner of) every version.
CREATE OR REPLACE FUNCTION ml.owns_model(p_model text, p_user name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model)
     AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model AND NOT pg_has_role(p_user, m.owner, 'USAGE'))
$$;

-- EXECUTE on every recorded function of a model (all versions) for one role.
CREATE FUNCTION ml.set_execute(p_model text, p_role name, p_grant boolean) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT g.fn::regprocedure FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id
            JOIN pg_proc p ON p.oid = g.fn
           WHERE m.model_name = p_model AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')
  LOOP
    EXECUTE format(CASE WHEN p_grant THEN 'GRANT EXECUTE ON FUNCTION %s TO %I' ELSE 'REVOKE EXECUTE ON FUNCTION %s FROM %I' END, f, p_role);
  END LOOP;
END $$;

CREATE FUNCTION ml.grant_model(p_model text, p_role name, p_caller name) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  PERFORM ml.acting_as(p_caller);
  IF ml.role_oid(p_role) IS NULL THEN PERFORM ml.invalid(format('role "%s" does not exist', p_role)); END IF;
  IF p_role = ml.reader_role() THEN PERFORM ml.invalid(format('models cannot be shared with the reader role "%s"', p_role)); END IF;
  IF NOT ml.owns_model(p_model, p_caller) THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('model "%s" does not exist or is not yours to share', p_model);
  END IF;
  INSERT INTO ml.grants (model_name, grantee, granted_by) VALUES (p_model, p_role, p_caller) ON CONFLICT DO NOTHING;
  PERFORM ml.set_execute(p_model, p_role, true);
END $$;

CREATE FUNCTION ml.revoke_model(p_model text, p_role name, p_caller name) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE n int;
BEGIN
  PERFORM ml.acting_as(p_caller);
  IF NOT ml.owns_model(p_model, p_caller) THEN
    RAISE EXCEPTION USING ERRCODE = '42501', MESSAGE = format('model "%s" does not exist or is not yours to share', p_model);
  END IF;
  DELETE FROM ml.grants g WHERE g.model_name = p_model AND g.grantee = p_role;
  GET DIAGNOSTICS n = ROW_COUNT;
  -- the model's owners keep EXECUTE whatever was granted to them as grantees
  IF n > 0 AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model AND m.owner = p_role) THEN
    PERFORM ml.set_execute(p_model, p_role, false);
  END IF;
  RETURN n > 0;
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_grant(model_name text, role name) RETURNS void
LANGUAGE sql AS $$ SELECT ml.grant_model(model_name, role, current_user) $$;
CREATE OR REPLACE FUNCTION @api@.ml_revoke(model_name text, role name) RETURNS boolean
LANGUAGE sql AS $$ SELECT ml.revoke_model(model_name, role, current_user) $$;

-- Drops recorded functions (only those the sidecar's role owns) of a model version; kinds
-- limits which (the sidecar clears a version's internal functions before writing it again).
CREATE FUNCTION ml.drop_generated(p_model_id bigint, p_kinds text[]) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE g record;
BEGIN
  FOR g IN SELECT gf.fn, p.oid IS NOT NULL AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml') AS ours
             FROM ml.generated_functions gf LEFT JOIN pg_proc p ON p.oid = gf.fn
            WHERE gf.model_id = p_model_id AND gf.kind = ANY (p_kinds)
  LOOP
    -- CASCADE: an object someone built on a model's function must not keep the model alive.
    IF g.ours THEN EXECUTE format('DROP FUNCTION IF EXISTS %s CASCADE', g.fn::regprocedure); END IF;
    DELETE FROM ml.generated_functions WHERE fn = g.fn;
  END LOOP;
END $$;

CREATE FUNCTION ml.drop_model(p_model text, p_caller name) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  n int;
  mid bigint;
  o record;
BEGIN
  PERFORM ml.acting_as(p_caller);
  IF NOT ml.owns_model(p_model, p_caller) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('model "%s" does not exist', p_model);
  END IF;
  PERFORM ml.lock_model_name(p_model);
  FOR mid IN SELECT id FROM ml.models WHERE model_name = p_model LOOP
    PERFORM ml.drop_generated(mid, ARRAY['public', 'internal']);
  END LOOP;
  FOR o IN SELECT t.relid FROM ml.output_tables t JOIN pg_class c ON c.oid = t.relid
            WHERE t.model_name = p_model AND c.relowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml') LOOP
    EXECUTE format('DROP TABLE IF EXISTS %s', o.relid::regclass);
  END LOOP;
  DELETE FROM ml.output_tables WHERE model_name = p_model;
  DELETE FROM ml.grants g WHERE g.model_name = p_model;
  DELETE FROM ml.models m WHERE m.model_name = p_model;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n;
END $$;

CREATE OR REPLACE FUNCTION @api@.ml_drop_model(model_name text) RETURNS int
LANGUAGE plpgsql AS $$
BEGIN
  IF ml.owns_model(model_name, current_user) THEN PERFORM ml.drop_finished_queries(model_name); END IF;
  RETURN ml.drop_model(model_name, current_user);
END $$;
COMMENT ON FUNCTION @api@.ml_drop_model(text) IS
  'sqlml: drop every version of a model, its jobs, grants, output table and generated functions; returns the number of versions dropped';

-- Supervised classifiers: at most max_classes distinct labels (checked when the labels are read).
ALTER FUNCTION ml.validate_supervised_options(text, jsonb) RENAME TO validate_supervised_options_007;
CREATE FUNCTION ml.validate_supervised_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
  IF options IS NULL OR jsonb_typeof(options) <> 'object' OR NOT options ? 'max_classes' THEN
    RETURN ml.validate_supervised_options_007(model_type, options);
  END IF;
  IF model_type NOT IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto') THEN
    PERFORM ml.invalid(format('option "max_classes" applies to classifiers (and auto), not to %s', model_type));
  END IF;
  PERFORM ml.opt_int(options, 'max_classes', 2, 100000);
  RETURN ml.validate_supervised_options_007(model_type, options - 'max_classes') || jsonb_build_object('max_classes', options -> 'max_classes');
END $$;

INSERT INTO ml.settings (key, value) VALUES ('reader_role', 'ml_reader') ON CONFLICT (key) DO NOTHING;

-- The helpers in ml run as their caller, with the caller's search_path unless pinned: pin every
-- one that executes no text of the caller's (those that do, and two per-row kernels, keep it).
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p
            WHERE p.pronamespace = 'ml'::regnamespace AND p.proconfig IS NULL
              AND p.proname NOT IN ('profile', 'summary', 'missing_feature', 'raise_missing_feature', 'require_label',
                                    'tree_shap', 'sum_by_group')
  LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, ml, pg_temp', f);
  END LOOP;
END $$;
