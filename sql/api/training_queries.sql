-- A training query becomes, in the requester's own session, a SECURITY DEFINER function owned by
-- the requester that only the reader role may execute and that returns rows only in the reader
-- session the sidecar registered for its token (docs/security.md, "How a training query runs").

CREATE OR REPLACE FUNCTION ml.reader_role() RETURNS name LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT value::name FROM ml.settings WHERE key = 'reader_role'
$$;

CREATE OR REPLACE FUNCTION ml.role_oid(r name) RETURNS oid LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT oid FROM pg_catalog.pg_roles WHERE rolname = r
$$;

-- Who calls a definer function: the API passes current_user, and the session must be able to
-- act as that role (SET ROLE to it). The reader role never acts: it must own nothing.
CREATE OR REPLACE FUNCTION ml.acting_as(claimed name) RETURNS name LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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
CREATE OR REPLACE FUNCTION ml.request_schema(p_role name) RETURNS name
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
CREATE OR REPLACE FUNCTION ml.issue_token(p_role name) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE t text := replace(gen_random_uuid()::text, '-', '');
BEGIN
  PERFORM ml.acting_as(p_role);
  INSERT INTO ml.tokens (token, owner) VALUES (t, p_role);
  RETURN t;
END $$;

-- The guard of every training function: true only in the reader session the sidecar registered
-- for it (the secret was given at that connection's start-up, never in query text).
CREATE OR REPLACE FUNCTION ml.reading(p_token text) RETURNS boolean
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ml.readers r
                  WHERE r.token = p_token AND r.secret = current_setting('sqlml.reader_secret', true))
$$;

-- The body of a training function (ml.enqueue_training and the sidecar check that it is exactly
-- this): the guard first, then the query, which is one complete statement (checked), so it
-- cannot close the parentheses; the newlines end a trailing -- comment.
CREATE OR REPLACE FUNCTION ml.reader_function_body(p_query text, p_token text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT format(E'#variable_conflict use_column\nBEGIN\n  IF ml.reading(%L) THEN\n    RETURN QUERY SELECT * FROM (\n%s\n) q;\n  END IF;\nEND',
                p_token, ml.strip_query(p_query))
$$;

-- Its row count, for a sample's share (streaming k-means), without the rows passing through a
-- set-returning function's tuplestore. The sidecar checks it is exactly this before calling it.
CREATE OR REPLACE FUNCTION ml.count_function_body(p_query text, p_token text) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT format(E'BEGIN\n  IF ml.reading(%L) THEN\n    RETURN (SELECT count(*) FROM (\n%s\n) q);\n  END IF;\n  RETURN NULL;\nEND',
                p_token, ml.strip_query(p_query))
$$;

-- The caller's training functions of jobs that have ended (of one model: all of them; step
-- functions of 11 arguments were made before the standardization's parameter) are no
-- longer needed; only their owner may drop them.
CREATE OR REPLACE FUNCTION ml.drop_finished_queries(p_model text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE f regprocedure;
BEGIN
  FOR f IN
    SELECT x.oid::regprocedure FROM ml.jobs j JOIN pg_proc p ON p.oid = j.query_function LEFT JOIN ml.models m ON m.id = j.model_id
      JOIN pg_proc x ON x.pronamespace = p.pronamespace AND x.proowner = p.proowner
                    AND (x.pronargs = 0 AND x.proname IN (p.proname, 'k_' || j.query_token) OR x.pronargs IN (11, 12) AND x.proname = 'a_' || j.query_token)
     WHERE j.kind = 'train' AND p.proowner = ml.role_oid(current_user)
       AND (CASE WHEN p_model IS NULL THEN j.status IN ('ready', 'failed', 'cancelled') ELSE m.model_name = p_model END)
  LOOP
    EXECUTE format('DROP FUNCTION IF EXISTS %s', f);
  END LOOP;
END $$;

-- The pieces of ml_create_model that build SQL, with the search_path pinned (they run as the
-- caller, but no name in them can resolve to a function a user planted); only the caller's
-- query text itself is resolved with the caller's search_path.
CREATE OR REPLACE FUNCTION ml.training_view_sql(p_schema name, p_token text, p_query text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT format(E'CREATE VIEW %I.%I AS SELECT * FROM (\n%s\n) q', p_schema, 'v_' || p_token, p_query)
$$;

CREATE OR REPLACE FUNCTION ml.view_of(p_schema name, p_token text) RETURNS regclass
LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT to_regclass(format('%I.%I', p_schema, 'v_' || p_token))
$$;

-- PostgreSQL's deparse of the view with only the catalog on the path: every other name qualified.
CREATE OR REPLACE FUNCTION ml.bound_query(p_view regclass) RETURNS text
LANGUAGE sql STABLE SET search_path = pg_catalog AS $$
  SELECT pg_get_viewdef(p_view, false)
$$;

CREATE OR REPLACE FUNCTION ml.estimated_rows(p_view regclass) RETURNS float8
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE plan json;
BEGIN
  EXECUTE format('EXPLAIN (FORMAT JSON) SELECT * FROM %s', p_view) INTO plan;
  RETURN (plan -> 0 -> 'Plan' ->> 'Plan Rows')::float8;
END $$;

-- The search_path of a caller's training functions: the caller's schemas, between the catalog
-- and pg_temp: functions the query calls (which may name objects unqualified) find what they
-- find in the caller's own session.
CREATE OR REPLACE FUNCTION ml.training_search_path(p_schemas name[]) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
  SELECT concat_ws(', ', 'pg_catalog', (SELECT string_agg(quote_ident(x), ', ' ORDER BY o) FROM unnest(p_schemas) WITH ORDINALITY AS u(x, o)), 'pg_temp')
$$;

-- Makes the caller's training function (and its count) from the view's columns and the bound
-- query, drops the view, and lets the reader role (only) execute them. Returns the training function.
CREATE OR REPLACE FUNCTION ml.make_training_function(p_view regclass, p_token text, p_bound text, p_schemas name[]) RETURNS regprocedure
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
  s name := (SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = p_view);
  columns text := (SELECT string_agg(format('%I %s', a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY a.attnum)
                     FROM pg_attribute a WHERE a.attrelid = p_view AND a.attnum > 0 AND NOT a.attisdropped);
  f regprocedure;
BEGIN
  EXECUTE format('DROP VIEW %s', p_view);
  EXECUTE format('CREATE FUNCTION %I.%I() RETURNS TABLE (%s) LANGUAGE plpgsql SECURITY DEFINER SET search_path = %s AS %L',
                 s, 'q_' || p_token, columns,
                 ml.training_search_path(p_schemas),
                 ml.reader_function_body(p_bound, p_token));
  EXECUTE format('CREATE FUNCTION %I.%I() RETURNS bigint LANGUAGE plpgsql SECURITY DEFINER SET search_path = %s AS %L',
                 s, 'k_' || p_token,
                 ml.training_search_path(p_schemas),
                 ml.count_function_body(p_bound, p_token));
  FOREACH f IN ARRAY ARRAY[to_regprocedure(format('%I.%I()', s, 'k_' || p_token)), to_regprocedure(format('%I.%I()', s, 'q_' || p_token))] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, ml.reader_role());
  END LOOP;
  RETURN f;
END $$;

CREATE OR REPLACE FUNCTION ml.refuse_view_error(p_state text, p_message text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
  IF p_state = '42701' THEN
    PERFORM ml.invalid(format('the training query has two columns named "%s"; give them distinct names with AS',
                              substring(p_message FROM 'column "(.*)" specified more than once')));
  END IF;
  PERFORM ml.invalid(format('training_query must be one SELECT statement that only reads data: %s', p_message));
END $$;
