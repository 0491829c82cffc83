-- Validation of model names and options, done in SQL before anything is enqueued, so that a
-- bad request raises at the call (SQLSTATE 22023, invalid_parameter_value) with the option's
-- name, the allowed values and what was given.

CREATE OR REPLACE FUNCTION ml.invalid(message text, hint text DEFAULT NULL) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF hint IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = message;
  END IF;
  RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = message, HINT = hint;
END $$;

-- Model and function names become SQL identifiers (quoted with %I); the suffix "_predict" must
-- still fit in PostgreSQL's 63-byte limit.
CREATE OR REPLACE FUNCTION ml.check_identifier(what text, name text, max_bytes int DEFAULT 55) RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
BEGIN
  IF name IS NULL OR name !~ '^[A-Za-z_][A-Za-z0-9_]*$' OR octet_length(name) > max_bytes THEN
    PERFORM ml.invalid(format('%s %s is not a valid name: use letters, digits and underscores, starting with a letter or underscore, at most %s bytes',
                              what, coalesce(quote_literal(name), 'NULL'), max_bytes));
  END IF;
  RETURN name;
END $$;

CREATE OR REPLACE FUNCTION ml.show_value(v jsonb) RETURNS text LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN jsonb_typeof(v) = 'string' THEN v #>> '{}' ELSE v::text END
$$;

-- An options object with only these keys.
CREATE OR REPLACE FUNCTION ml.check_options(options jsonb, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE k text;
BEGIN
  IF options IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(options) <> 'object' THEN
    PERFORM ml.invalid(format('options must be a JSON object (got %s)', options::text));
  END IF;
  FOR k IN SELECT jsonb_object_keys(options) LOOP
    IF NOT k = ANY (allowed) THEN
      PERFORM ml.invalid(format('unknown option "%s"; allowed: %s', k, array_to_string(allowed, ', ')));
    END IF;
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_int(options jsonb, key text, lo bigint, hi bigint) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
     OR (v #>> '{}')::numeric < lo OR (v #>> '{}')::numeric > hi THEN
    PERFORM ml.invalid(format('option "%s" must be an integer between %s and %s (got "%s")', key, lo, hi, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_number(options jsonb, key text, lo float8, hi float8) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'number' OR (v #>> '{}')::float8 < lo OR (v #>> '{}')::float8 > hi THEN
    PERFORM ml.invalid(format('option "%s" must be a number between %s and %s (got "%s")', key, lo, hi, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_bool(options jsonb, key text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NOT NULL AND jsonb_typeof(v) <> 'boolean' THEN
    PERFORM ml.invalid(format('option "%s" must be true or false (got "%s")', key, ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_enum(options jsonb, key text, allowed text[]) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NOT NULL AND (jsonb_typeof(v) <> 'string' OR NOT lower(v #>> '{}') = ANY (allowed)) THEN
    PERFORM ml.invalid(format('option "%s" must be one of %s (got "%s")', key, array_to_string(allowed, ', '), ml.show_value(v)));
  END IF;
END $$;

CREATE OR REPLACE FUNCTION ml.opt_name_list(options jsonb, key text) RETURNS void
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE v jsonb := options -> key;
BEGIN
  IF v IS NULL OR jsonb_typeof(v) = 'string' THEN RETURN; END IF;
  IF jsonb_typeof(v) <> 'array' OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'string') THEN
    PERFORM ml.invalid(format('option "%s" must be a column name or an array of column names (got %s)', key, v::text));
  END IF;
END $$;

-- The options every model type takes (checked by validate_clustering_options).
CREATE OR REPLACE FUNCTION ml.common_option_keys() RETURNS text[]
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT ARRAY['exclude', 'ignore', 'max_categories', 'category_overflow', 'min_category_share', 'function_name', 'seed', 'max_runtime']
$$;

CREATE OR REPLACE FUNCTION ml.validate_options(model_type text, options jsonb) RETURNS jsonb
LANGUAGE plpgsql IMMUTABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE common jsonb;
BEGIN
  IF model_type = 'clv' THEN
    RETURN ml.validate_clv_options(options);
  END IF;
  IF model_type = ANY (ml.supervised_types()) THEN
    IF options IS NOT NULL AND jsonb_typeof(options) <> 'object' THEN
      PERFORM ml.invalid(format('options must be a JSON object such as ''{"input_label_cols": ["ltv"]}'' (got %s)', options::text));
    END IF;
    -- The options every model type shares are checked (and "ignore" folded) by the clustering
    -- validator, given only those.
    common := ml.validate_clustering_options(model_type,
      (SELECT coalesce(jsonb_object_agg(key, value), '{}') FROM jsonb_each(coalesce(options, '{}'))
        WHERE key = ANY (ml.common_option_keys())));
    RETURN ml.validate_supervised_options(model_type, coalesce(options, '{}') - 'ignore' - 'exclude' || common);
  END IF;
  RETURN ml.validate_clustering_options(model_type, options);
END $$;

-- Name, type and options of a training request, checked; returns the canonical options.
CREATE OR REPLACE FUNCTION ml.validate_request(p_model text, p_type text, p_options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
DECLARE
  mtype text := lower(trim(p_type));
  opts jsonb;
  fn text;
BEGIN
  PERFORM ml.check_identifier('model name', p_model);
  IF mtype IS NULL OR NOT mtype = ANY (ARRAY['kmeans', 'hdbscan', 'pca', 'clv'] || ml.supervised_types()) THEN
    PERFORM ml.invalid(format('unknown model_type "%s"; supported: %s', p_type,
                              array_to_string(ARRAY['kmeans', 'hdbscan', 'pca', 'clv'] || ml.supervised_types(), ', ')));
  END IF;
  opts := ml.validate_options(mtype, p_options);
  IF mtype = 'clv' AND opts ->> 'function_name' IS NULL AND octet_length(p_model) > 44 THEN
    PERFORM ml.invalid(format('model name "%s" is too long for a clv model: "%s_expected_purchases" must fit in 63 bytes; set option "function_name" to a shorter name', p_model, p_model));
  END IF;
  fn := coalesce(opts ->> 'function_name', p_model || '_predict');
  IF mtype IN ('logistic_reg', 'boosted_tree_classifier', 'random_forest_classifier', 'auto') AND octet_length(fn) > 49 THEN
    PERFORM ml.invalid(format('function name "%s" is too long for a classifier: "%s_probabilities" must fit in 63 bytes; set option "function_name" to a shorter name', fn, fn));
  END IF;
  RETURN opts;
END $$;

-- output_table: [schema, table]; unqualified names go to the API schema.
CREATE OR REPLACE FUNCTION ml.output_table_name(opts jsonb) RETURNS text[] LANGUAGE sql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
  SELECT CASE WHEN opts ->> 'output_table' IS NULL THEN NULL
              WHEN strpos(opts ->> 'output_table', '.') > 0 THEN string_to_array(opts ->> 'output_table', '.')
              ELSE ARRAY[(SELECT value FROM ml.settings WHERE key = 'api_schema'), opts ->> 'output_table'] END
$$;

-- An output_table goes where its requester may create tables, never into a temporary or a
-- system schema, and never over a table that sqlml did not write for this model.
CREATE OR REPLACE FUNCTION ml.check_output_table(p_requester name, p_model text, opts jsonb) RETURNS void
LANGUAGE plpgsql STABLE SET search_path = pg_catalog, ml, pg_temp AS $$
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
