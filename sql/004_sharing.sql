-- 004: sharing models between roles (ml_grant / ml_revoke), enforced by row-level security.
-- A model belongs to the role that created it. Its owner (and members of the owner role) may
-- read, retrain, share and drop it; grantees may read it and score with it, nothing more.

CREATE TABLE ml.grants (
  model_name  text NOT NULL,
  grantee     name NOT NULL,
  granted_by  name NOT NULL DEFAULT current_user,
  granted_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (model_name, grantee)
);

-- SECURITY DEFINER so that policies on ml.models and ml.grants can consult each other without
-- recursing; the caller's role is passed in (current_user inside would be the definer).
CREATE FUNCTION ml.can_read_model(p_model text, p_owner name, p_user name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml AS $$
  SELECT pg_has_role(p_user, p_owner, 'USAGE')
      OR EXISTS (SELECT 1 FROM ml.grants g WHERE g.model_name = p_model AND pg_has_role(p_user, g.grantee, 'USAGE'))
$$;

CREATE FUNCTION ml.owns_model(p_model text, p_user name) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, ml AS $$
  SELECT EXISTS (SELECT 1 FROM ml.models m WHERE m.model_name = p_model AND pg_has_role(p_user, m.owner, 'USAGE'))
$$;

DROP POLICY own_models ON ml.models;
CREATE POLICY models_read ON ml.models FOR SELECT USING (ml.can_read_model(model_name, owner, current_user));
CREATE POLICY models_insert ON ml.models FOR INSERT WITH CHECK (owner = current_user);
CREATE POLICY models_update ON ml.models FOR UPDATE USING (pg_has_role(current_user, owner, 'USAGE'));
CREATE POLICY models_delete ON ml.models FOR DELETE USING (pg_has_role(current_user, owner, 'USAGE'));

-- Grantees see the jobs of the models they may read (a model's state is its job's status).
DROP POLICY own_jobs ON ml.jobs;
CREATE POLICY jobs_read ON ml.jobs FOR SELECT
  USING (pg_has_role(current_user, requested_by, 'USAGE') OR EXISTS (SELECT 1 FROM ml.models m WHERE m.id = model_id));
CREATE POLICY jobs_insert ON ml.jobs FOR INSERT WITH CHECK (requested_by = current_user);
CREATE POLICY jobs_update ON ml.jobs FOR UPDATE USING (pg_has_role(current_user, requested_by, 'USAGE'));

ALTER TABLE ml.grants ENABLE ROW LEVEL SECURITY;
CREATE POLICY grants_read ON ml.grants FOR SELECT
  USING (pg_has_role(current_user, grantee, 'USAGE') OR ml.owns_model(model_name, current_user));
CREATE POLICY grants_write ON ml.grants FOR INSERT WITH CHECK (ml.owns_model(model_name, current_user));
CREATE POLICY grants_delete ON ml.grants FOR DELETE USING (ml.owns_model(model_name, current_user));
GRANT SELECT, INSERT, DELETE ON ml.grants TO PUBLIC;

-- The generated functions belong to the sidecar role: granting EXECUTE on them takes its
-- rights, hence SECURITY DEFINER; who may share is decided by RLS on ml.grants.
CREATE FUNCTION ml.apply_grant() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, ml AS $$
DECLARE
  g ml.grants := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  f text;
BEGIN
  FOR f IN
    SELECT function_signature FROM ml.models WHERE model_name = g.model_name AND function_signature IS NOT NULL
    UNION
    SELECT t.distances_function FROM ml.trials t JOIN ml.models m ON m.id = t.model_id
     WHERE m.model_name = g.model_name AND t.distances_function IS NOT NULL
  LOOP
    IF TG_OP = 'DELETE' THEN
      EXECUTE format('REVOKE EXECUTE ON FUNCTION %s FROM %I', f, g.grantee);
    ELSE
      EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO %I', f, g.grantee);
    END IF;
  END LOOP;
  RETURN NULL;
END $$;
CREATE TRIGGER grants_apply AFTER INSERT OR DELETE ON ml.grants FOR EACH ROW EXECUTE FUNCTION ml.apply_grant();

CREATE FUNCTION @api@.ml_grant(model_name text, role name) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF to_regrole(quote_ident(role)) IS NULL THEN
    PERFORM ml.invalid(format('role "%s" does not exist', role));
  END IF;
  IF NOT ml.owns_model(model_name, current_user) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('model "%s" does not exist or is not yours to share', model_name);
  END IF;
  INSERT INTO ml.grants (model_name, grantee) VALUES (model_name, role) ON CONFLICT DO NOTHING;
END $$;
COMMENT ON FUNCTION @api@.ml_grant(text, name) IS
  'sqlml: let a role read a model (every version) and execute its scoring functions';

CREATE FUNCTION @api@.ml_revoke(model_name text, role name) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  IF NOT ml.owns_model(model_name, current_user) THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('model "%s" does not exist or is not yours to share', model_name);
  END IF;
  DELETE FROM ml.grants g WHERE g.model_name = ml_revoke.model_name AND g.grantee = role;
  GET DIAGNOSTICS n = ROW_COUNT;
  RETURN n > 0;
END $$;
COMMENT ON FUNCTION @api@.ml_revoke(text, name) IS 'sqlml: take back what ml_grant gave';

-- The views filtered by ownership; now they follow the tables' policies (readers included).
CREATE OR REPLACE VIEW @api@.ml_models AS
  SELECT m.model_name, m.version, m.model_type, j.status AS state, m.options, m.metrics, m.owner,
         m.created_at, m.trained_at, j.error, m.function_name, m.job_id
  FROM ml.models m LEFT JOIN ml.jobs j ON j.id = m.job_id
  WHERE ml.can_read_model(m.model_name, m.owner, current_user);

CREATE FUNCTION @api@.ml_drop_model(model_name text) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE n int;
BEGIN
  DELETE FROM ml.grants g WHERE g.model_name = ml_drop_model.model_name;
  DELETE FROM ml.models m WHERE m.model_name = ml_drop_model.model_name;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF n = 0 THEN
    RAISE EXCEPTION USING ERRCODE = '42704', MESSAGE = format('model "%s" does not exist', model_name);
  END IF;
  RETURN n;
END $$;
COMMENT ON FUNCTION @api@.ml_drop_model(text) IS
  'sqlml: drop every version of a model, its jobs, grants and generated functions; returns the number of versions dropped';
