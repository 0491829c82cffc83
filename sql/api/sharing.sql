-- Who may see and share a model: row-level security on ml.* (read policies only: no role but the
-- sidecar's writes these tables), ml_grant / ml_revoke, and dropping a model with everything
-- that sqlml recorded for it.

-- SECURITY DEFINER so that policies on ml.models and ml.grants can consult each other without
-- recursing; the caller's role is passed in (current_user inside would be the definer).
CREATE OR REPLACE FUNCTION ml.can_read_model(p_model text, p_owner name, p_user name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT pg_has_role(p_user, p_owner, 'USAGE')
      OR EXISTS (SELECT 1 FROM ml.grants g WHERE g.model_name = p_model AND pg_has_role(p_user, g.grantee, 'USAGE'))
$$;

-- Whether p_user may share and drop a model: it owns (or is a member of the owner of) every version.
CREATE OR REPLACE FUNCTION ml.owns_model(p_model text, p_user name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model)
     AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model AND NOT pg_has_role(p_user, m.owner, 'USAGE'))
$$;

DROP POLICY IF EXISTS models_read ON ml.models;
CREATE POLICY models_read ON ml.models FOR SELECT USING (ml.can_read_model(model_name, owner, current_user));
-- Grantees see the jobs of the models they may read (a model's state is its job's status).
DROP POLICY IF EXISTS jobs_read ON ml.jobs;
CREATE POLICY jobs_read ON ml.jobs FOR SELECT
  USING (pg_has_role(current_user, requested_by, 'USAGE') OR EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
DROP POLICY IF EXISTS own_centroids ON ml.centroids;
CREATE POLICY own_centroids ON ml.centroids USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
DROP POLICY IF EXISTS own_trials ON ml.trials;
CREATE POLICY own_trials ON ml.trials USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
DROP POLICY IF EXISTS own_training_info ON ml.training_info;
CREATE POLICY own_training_info ON ml.training_info USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
DROP POLICY IF EXISTS own_feature_info ON ml.feature_info;
CREATE POLICY own_feature_info ON ml.feature_info USING (EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
DROP POLICY IF EXISTS grants_read ON ml.grants;
CREATE POLICY grants_read ON ml.grants FOR SELECT
  USING (pg_has_role(current_user, grantee, 'USAGE') OR ml.owns_model(model_name, current_user));

-- EXECUTE on every recorded function of a model (all versions) for one role.
CREATE OR REPLACE FUNCTION ml.set_execute(p_model text, p_role name, p_grant boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT g.fn::regprocedure FROM ml.generated_functions g JOIN ml.models m ON m.id = g.model_id
            JOIN pg_proc p ON p.oid = g.fn
           WHERE m.model_name = p_model AND p.proowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml')
  LOOP
    EXECUTE format(CASE WHEN p_grant THEN 'GRANT EXECUTE ON FUNCTION %s TO %I' ELSE 'REVOKE EXECUTE ON FUNCTION %s FROM %I' END, f, p_role);
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ml.grant_model(p_model text, p_role name, p_caller name) RETURNS void
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

CREATE OR REPLACE FUNCTION ml.revoke_model(p_model text, p_role name, p_caller name) RETURNS boolean
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
COMMENT ON FUNCTION @api@.ml_grant(text, name) IS
  'sqlml: let a role read a model (every version) and execute its scoring functions';

CREATE OR REPLACE FUNCTION @api@.ml_revoke(model_name text, role name) RETURNS boolean
LANGUAGE sql AS $$ SELECT ml.revoke_model(model_name, role, current_user) $$;
COMMENT ON FUNCTION @api@.ml_revoke(text, name) IS 'sqlml: take back what ml_grant gave';

-- Drops recorded functions (only those the sidecar's role owns) of a model version; kinds
-- limits which (the sidecar clears a version's internal functions before writing it again).
CREATE OR REPLACE FUNCTION ml.drop_generated(p_model_id bigint, p_kinds text[]) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, ml, pg_temp AS $$
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

-- 'name@N': one version. The version that serves the model's scoring functions (the latest
-- ready one) stays while others exist: dropping it would leave <name>_predict pointing nowhere.
CREATE OR REPLACE FUNCTION ml.drop_version(p_model text, p_version int, p_caller name) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  mid bigint;
  versions text;
BEGIN
  PERFORM ml.acting_as(p_caller);
  IF NOT ml.owns_model(p_model, p_caller) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('model "%s" does not exist', p_model);
  END IF;
  PERFORM ml.lock_model_name(p_model);
  SELECT string_agg(version::text, ', ' ORDER BY version) INTO versions FROM ml.models WHERE model_name = p_model;
  SELECT id INTO mid FROM ml.models WHERE model_name = p_model AND version = p_version;
  IF NOT FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42704',
      MESSAGE = format('model "%s" has no version %s (its versions: %s)', p_model, p_version, versions);
  END IF;
  IF versions = p_version::text THEN RETURN ml.drop_model(p_model, p_caller); END IF;
  IF EXISTS (SELECT 1 FROM ml.generated_functions WHERE model_id = mid AND kind = 'public') THEN
    RAISE EXCEPTION USING ERRCODE = '55006',
      MESSAGE = format('version %s of model "%s" serves its scoring functions and stays while other versions exist', p_version, p_model),
      HINT = format('drop every version with ml_drop_model(%L), or train a newer version first', p_model);
  END IF;
  PERFORM ml.drop_generated(mid, ARRAY['public', 'internal']);
  DELETE FROM ml.models WHERE id = mid;
  RETURN 1;
END $$;

CREATE OR REPLACE FUNCTION ml.drop_model(p_model text, p_caller name) RETURNS int
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  n int;
  mid bigint;
  o record;
BEGIN
  PERFORM ml.acting_as(p_caller);
  IF p_model ~ '@[0-9]+$' AND NOT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model) THEN
    RETURN ml.drop_version(substring(p_model FROM '^(.*)@[0-9]+$'), substring(p_model FROM '@([0-9]+)$')::int, p_caller);
  END IF;
  IF NOT ml.owns_model(p_model, p_caller) THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('model "%s" does not exist', p_model);
  END IF;
  PERFORM ml.lock_model_name(p_model);
  FOR mid IN SELECT id FROM ml.models WHERE model_name = p_model LOOP
    PERFORM ml.drop_generated(mid, ARRAY['public', 'internal']);
  END LOOP;
  FOR o IN SELECT t.relid FROM ml.output_tables t JOIN pg_class c ON c.oid = t.relid
            WHERE t.model_name = p_model AND c.relowner = (SELECT nspowner FROM pg_namespace WHERE nspname = 'ml') LOOP
    EXECUTE format('DROP TABLE IF EXISTS %s CASCADE', o.relid::regclass);
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
  'sqlml: drop every version of a model (or one: ''name@3''), its jobs, grants, output table and generated functions; returns the number of versions dropped';
