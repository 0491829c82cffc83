-- The queue as the API shows it: enqueue a training (ml_create_model, ml_train), wait, cancel;
-- the notifications that wake the sidecars. How the training query becomes the requester's
-- training function is in training_queries.sql; the sidecar's side of the state machine is
-- src/queue/job-sql.ts.

-- Wake the sidecars: the payload is the job id only (NOTIFY payloads must stay < 8000 bytes,
-- and distinct payloads are not folded together within one transaction).
CREATE OR REPLACE FUNCTION ml.notify_job() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  PERFORM pg_notify('ml_jobs', NEW.id::text);
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS jobs_notify ON ml.jobs;
CREATE TRIGGER jobs_notify AFTER INSERT ON ml.jobs FOR EACH ROW EXECUTE FUNCTION ml.notify_job();

CREATE OR REPLACE FUNCTION ml.notify_job_done() RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF NEW.status IN ('ready', 'done', 'failed', 'cancelled') AND OLD.status IS DISTINCT FROM NEW.status THEN
    PERFORM pg_notify('ml_job_done', NEW.id::text);
  END IF;
  IF NEW.cancel_requested AND NOT OLD.cancel_requested THEN
    PERFORM pg_notify('ml_cancel', NEW.id::text);
  END IF;
  -- the console pushes progress to its pages (the worker throttles progress updates)
  IF NEW.progress IS DISTINCT FROM OLD.progress OR NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM pg_notify('ml_job_progress', NEW.id::text);
  END IF;
  RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS jobs_notify_done ON ml.jobs;
CREATE TRIGGER jobs_notify_done AFTER UPDATE ON ml.jobs FOR EACH ROW EXECUTE FUNCTION ml.notify_job_done();

-- Until the end of the transaction, this model name is ours (the installer's code only).
CREATE OR REPLACE FUNCTION ml.lock_model_name(p_model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  INSERT INTO ml.model_names (model_name) VALUES (p_model) ON CONFLICT DO NOTHING;
  PERFORM 1 FROM ml.model_names WHERE model_name = p_model FOR UPDATE;
END $$;

REVOKE ALL ON FUNCTION ml.lock_model_name(text) FROM PUBLIC;

-- The one way a training request enters the queue: validates everything again (it may be
-- called directly), and takes the requester from the training function's owner, whom the
-- session must be able to act as.
-- (the step's queries were added for in-database k-means: the old signatures go)
DROP FUNCTION IF EXISTS ml.enqueue_training(regprocedure, text, float8, text, text, jsonb, text, text);
DROP FUNCTION IF EXISTS ml.enqueue_training(regprocedure, text, float8, text, text, jsonb, text, text, text[], boolean);
CREATE OR REPLACE FUNCTION ml.enqueue_training(p_function regprocedure, p_token text, p_estimate float8,
                                    p_model text, p_type text, p_options jsonb, p_query text, p_query_sql text,
                                    p_step_queries text[] DEFAULT NULL, p_step_fenced boolean DEFAULT NULL, p_step_split regclass DEFAULT NULL)
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
  IF NOT ml.step_queries_valid(p_step_queries, p_step_split, p_query_sql) OR (p_step_queries IS NOT NULL AND p_step_fenced IS NULL) THEN
    PERFORM ml.invalid('the in-database step''s queries must be given as ml_create_model makes them');
  END IF;
  UPDATE ml.tokens SET used_at = now() WHERE token = p_token AND owner = requester AND used_at IS NULL;
  IF NOT FOUND THEN
    PERFORM ml.invalid('the training query must be given as ml_create_model makes it (its token was not issued to its owner, or was used)');
  END IF;
  PERFORM ml.acting_as(requester);
  PERFORM ml.check_output_table(requester, p_model, opts);

  -- Versions of one name are numbered in order, whoever races.
  PERFORM ml.lock_model_name(p_model);
  IF mtype = 'clv' THEN
    -- a clv model's functions are <prefix>_p_alive, _expected_purchases, _expected_spend, _clv
    fn := coalesce(opts ->> 'function_name', p_model);
    conflict := coalesce(ml.name_conflict(p_model, fn || '_p_alive', requester), ml.name_conflict(p_model, fn || '_expected_purchases', requester),
                         ml.name_conflict(p_model, fn || '_expected_spend', requester), ml.name_conflict(p_model, fn || '_clv', requester));
  ELSE
    conflict := coalesce(ml.name_conflict(p_model, fn, requester), ml.name_conflict(p_model, fn || '_probabilities', requester));
  END IF;
  IF conflict IS NOT NULL THEN PERFORM ml.invalid(conflict); END IF;
  SELECT coalesce(max(m.version), 0) + 1 INTO ver FROM ml.models m WHERE m.model_name = p_model;

  INSERT INTO ml.models (model_name, version, model_type, options, function_name, owner)
  VALUES (p_model, ver, mtype, opts, fn, requester) RETURNING id INTO mid;
  INSERT INTO ml.jobs (kind, model_id, training_query, requested_by, query_function, query_token, query_sql, estimated_rows, step_queries, step_fenced)
  VALUES ('train', mid, p_query, requester, p_function, p_token, p_query_sql,
          CASE WHEN p_estimate BETWEEN 0 AND 1e12 THEN p_estimate ELSE 0 END, p_step_queries, p_step_fenced) RETURNING id INTO jid;
  UPDATE ml.models SET job_id = jid WHERE id = mid;
  RETURN jid;
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
  msg text;
  hnt text;
  features bigint;
  opts jsonb;
  fn regprocedure;
  steps text[];
  fenced boolean;
  split regclass;
  explicit boolean;
BEGIN
  BEGIN
    opts := ml.validate_request(model_name, model_type, options);
  EXCEPTION WHEN invalid_parameter_value THEN
    -- raised again from here: one CONTEXT line in psql instead of one per nested checker
    GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
    IF hnt OPERATOR(pg_catalog.=) '' THEN RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = msg; END IF;
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = msg, HINT = hnt;
  END;
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
  IF pg_catalog.lower(pg_catalog.btrim(model_type)) OPERATOR(pg_catalog.=) 'clv' THEN
    -- the transactions query's customer, time and value columns, named as its requester sees
    -- them; the training function then returns the RFM summary (one row per customer,
    -- aggregated as the requester), not the transactions
    -- (through ml.safe_query: the summary's casts and GROUP BY must not run another role's
    -- cast or operator on a column of its type; the columns of users' types arrive as text)
    options := ml.clv_columns(q, options);
    q := ml.clv_training_query(ml.safe_query(q), options);
  END IF;
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
  -- Said before training: a model of more than 100 features (a function's limit on arguments)
  -- gets functions that take the row as one jsonb.
  features := (SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=) v AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped)
              OPERATOR(pg_catalog.-) coalesce(pg_catalog.jsonb_array_length(CASE pg_catalog.jsonb_typeof(options OPERATOR(pg_catalog.->) 'exclude') WHEN 'array' THEN options OPERATOR(pg_catalog.->) 'exclude' END), 0);
  IF features OPERATOR(pg_catalog.>) 100 THEN
    RAISE NOTICE '%', pg_catalog.format('the query has about %s feature columns, more than the 100 arguments a SQL function may take: the generated functions will take the row as one jsonb argument, e.g. SELECT %s(to_jsonb(t)) FROM my_table t',
                                      features, coalesce(options OPERATOR(pg_catalog.->>) 'function_name', model_name OPERATOR(pg_catalog.||) '_predict'));
  END IF;
  bound := ml.bound_query(v);
  estimate := ml.estimated_rows(v);
  -- in-database k-means: the Lloyd step's aggregate, in a function of the caller's (in_database.sql)
  -- (also for a k-means request that may be trained there by the sidecar's choice)
  explicit := pg_catalog.lower(opts OPERATOR(pg_catalog.->>) 'training_mode') OPERATOR(pg_catalog.=) 'in_database';
  IF explicit OR ml.in_database_possible(model_type, opts) THEN
    SELECT p.queries, p.split, p.fenced INTO steps, split, fenced FROM ml.step_plan(v, token, bound) p;
  END IF;
  fn := ml.make_training_function(v, token, bound, pg_catalog.current_schemas(false));
  IF explicit THEN
    PERFORM ml.make_step_function(fn, token, steps, fenced, opts, pg_catalog.current_schemas(false));
  ELSIF steps IS NOT NULL THEN
    BEGIN
      PERFORM ml.make_step_function(fn, token, steps, fenced, opts, pg_catalog.current_schemas(false));
    EXCEPTION WHEN invalid_parameter_value THEN
      steps := NULL;  -- a column the step cannot read: this model trains in memory
      split := NULL;
    END;
  END IF;
  RETURN ml.enqueue_training(fn, token, estimate, model_name, model_type, options, training_query, bound, steps, fenced, split);
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
  stage text;           -- status and phase last reported
  said text;            -- the last NOTICE
  said_at timestamptz;
  line text;
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
    -- Progress as NOTICEs: at each change of status or phase, else at most every 3 s
    -- (SET client_min_messages = warning silences them).
    SELECT format('job %s (%s) %s%s', job_id, j.model_name, j.status, coalesce(': ' || (j.progress->>'phase'), ''))
             || coalesce(', ' || string_agg(format('%s %s', e.key,
                  CASE WHEN jsonb_typeof(e.value) = 'number' THEN trim_scale(round((e.value #>> '{}')::numeric, 4))::text
                       ELSE e.value #>> '{}' END),
                  ', ' ORDER BY array_position(ARRAY['trial', 'k', 'run', 'of', 'iteration', 'loss', 'eval_loss', 'rows', 'rows_expected'], e.key), e.key), '')
             || CASE WHEN j.started_at IS NULL THEN ''
                     ELSE format(', %s s', round(extract(epoch FROM clock_timestamp() - j.started_at)::numeric, 1)) END
      INTO line FROM jsonb_each(coalesce(j.progress, '{}') - 'phase') e;
    IF stage IS DISTINCT FROM j.status || '/' || coalesce(j.progress->>'phase', '')
       OR (clock_timestamp() - said_at >= interval '3 seconds'
           AND regexp_replace(line, ', [0-9.]+ s$', '') IS DISTINCT FROM regexp_replace(said, ', [0-9.]+ s$', '')) THEN
      RAISE NOTICE '%', line;
      stage := j.status || '/' || coalesce(j.progress->>'phase', '');
      said := line;
      said_at := clock_timestamp();
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
COMMENT ON FUNCTION @api@.ml_wait(bigint, interval) IS
  'sqlml: wait (after COMMIT) until a job ends; returns its ml_jobs row, raises if it failed or was cancelled';

-- The first ml_train had an INOUT job_id, so a PL/pgSQL caller (a procedure, a DO block) had to
-- pass a variable for it; the job id is in ml_jobs.
DROP PROCEDURE IF EXISTS @api@.ml_train(text, text, text, jsonb, bigint);
CREATE OR REPLACE PROCEDURE @api@.ml_train(model_name text, model_type text, training_query text,
                                options jsonb DEFAULT '{}')
LANGUAGE plpgsql AS $$
DECLARE
  job_id bigint;
  st text;
  msg text;
  hnt text;
BEGIN
  job_id := @api@.ml_create_model(model_name, model_type, training_query, options);
  -- Fails with "invalid transaction termination" inside a transaction block (BEGIN ... CALL) or
  -- when called from a function: the sidecar cannot see the job before it is committed.
  COMMIT;
  BEGIN
    PERFORM @api@.ml_wait(job_id, '1 day');
  EXCEPTION WHEN OTHERS THEN
    -- the job's error raised again from here: one CONTEXT line instead of three
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, hnt = PG_EXCEPTION_HINT;
    IF hnt = '' THEN RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg; END IF;
    RAISE EXCEPTION USING ERRCODE = st, MESSAGE = msg, HINT = hnt;
  END;
END $$;
COMMENT ON PROCEDURE @api@.ml_train(text, text, text, jsonb) IS
  'sqlml: CALL ml_train(...) enqueues, commits and waits in one statement; at top level, in procedures and DO blocks, not inside BEGIN ... COMMIT';

CREATE OR REPLACE FUNCTION ml.cancel_job(p_job bigint, p_caller name) RETURNS boolean
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
COMMENT ON FUNCTION @api@.ml_cancel(bigint) IS
  'sqlml: cancel a queued job at once, or a running one between two iterations; false if it had already ended';
