-- PCA models (BigQuery ML's model_type PCA): the components and what each explains.

-- ML.PRINCIPAL_COMPONENTS: per component and input column its loading (numerical_value, on the
-- standardized column when the model scaled features) or, for a one-hot column, one loading per
-- category (categorical_value).
CREATE OR REPLACE FUNCTION @api@.ml_principal_components(model_name text)
RETURNS TABLE (principal_component_id int, feature text, numerical_value float8, categorical_value jsonb)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  a jsonb := m.artifact;
BEGIN
  PERFORM ml.require_model_type(m, 'ml_principal_components', ARRAY['pca'], 'pca');
  RETURN QUERY
    SELECT c.i::int, f ->> 'name',
           CASE WHEN f ->> 'kind' = 'numeric' THEN (c.w ->> (f ->> 'offset')::int)::float8 END,
           CASE WHEN f ->> 'kind' = 'categorical' THEN
             (SELECT jsonb_agg(jsonb_build_object('category', x.v, 'value', (c.w ->> ((f ->> 'offset')::int + x.j::int - 1))::float8) ORDER BY x.j)
                FROM jsonb_array_elements(f -> 'categories') WITH ORDINALITY x(v, j)) END
      FROM jsonb_array_elements(a -> 'components') WITH ORDINALITY c(w, i)
      CROSS JOIN LATERAL jsonb_array_elements(a -> 'features') WITH ORDINALITY g(f, o)
     ORDER BY c.i, g.o;
END $$;
COMMENT ON FUNCTION @api@.ml_principal_components(text) IS
  'sqlml: per principal component and feature, its loading (numerical_value) or per-category loadings (categorical_value), as BigQuery ML.PRINCIPAL_COMPONENTS';

-- ML.PRINCIPAL_COMPONENT_INFO: eigenvalue, explained and cumulative explained variance ratio.
CREATE OR REPLACE FUNCTION @api@.ml_principal_component_info(model_name text)
RETURNS TABLE (principal_component_id int, eigenvalue float8, explained_variance_ratio float8, cumulative_explained_variance_ratio float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  a jsonb := m.artifact;
BEGIN
  PERFORM ml.require_model_type(m, 'ml_principal_component_info', ARRAY['pca'], 'pca');
  RETURN QUERY
    SELECT e.i::int, e.v::text::float8, (a -> 'explained_variance_ratio' ->> (e.i::int - 1))::float8,
           sum((a -> 'explained_variance_ratio' ->> (e.i::int - 1))::float8) OVER (ORDER BY e.i)
      FROM jsonb_array_elements(a -> 'eigenvalues') WITH ORDINALITY e(v, i)
     WHERE e.i <= jsonb_array_length(a -> 'components')
     ORDER BY e.i;
END $$;
COMMENT ON FUNCTION @api@.ml_principal_component_info(text) IS
  'sqlml: per principal component its eigenvalue, explained variance ratio and the cumulative ratio, as BigQuery ML.PRINCIPAL_COMPONENT_INFO';

-- The segment scatter: every clustering model keeps the first two principal components of its
-- prepared training rows (artifact.projection, with an internal projection function), so a
-- report or a BI tool can draw the rows of any query at x, y coloured by centroid_id. For a pca
-- model x, y are its first two components. Without a query: the model's centroids (k-means) or
-- exemplars (hdbscan) at their projected places. Option max_rows: a random sample of the rows.
-- membership_probability and outlier_score were added (a changed result type needs the DROP).
DO $$ DECLARE f regprocedure := to_regprocedure(format('%I.ml_project(text,text,jsonb)', @api_name@));
BEGIN
  IF f IS NOT NULL AND pg_get_function_result(f) NOT LIKE '%outlier_score%' THEN
    DROP FUNCTION @api@.ml_project(text, text, jsonb);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION @api@.ml_project(model_name text, query text DEFAULT NULL, options jsonb DEFAULT '{}')
RETURNS TABLE (x float8, y float8, centroid_id int, input jsonb, membership_probability float8, outlier_score float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['max_rows']);
  q text := ml.safe_query(ml.strip_query(query));
  p jsonb := m.artifact -> 'projection';
BEGIN
  PERFORM ml.opt_int(options, 'max_rows', 1, 100000000);
  PERFORM ml.require_model_type(m, 'ml_project', ARRAY['kmeans', 'hdbscan', 'pca'], 'clustering and pca');
  IF m.model_type <> 'pca' AND p IS NULL THEN
    PERFORM ml.invalid(format('model "%s" version %s was trained before models kept a projection; train it again (CALL ml_train(...)) to use ml_project', m.model_name, m.version));
  END IF;
  IF query IS NULL THEN
    IF m.model_type = 'pca' THEN
      PERFORM ml.invalid('ml_project of a pca model needs a query');
    END IF;
    -- (c - center) . component, per centroid (exemplars of a density model, numbered by cluster)
    RETURN QUERY
      SELECT (SELECT sum(((c.v ->> (j.i - 1)::int)::float8 - (p -> 'center' ->> (j.i - 1)::int)::float8) * (p -> 'components' -> 0 ->> (j.i - 1)::int)::float8)
                FROM generate_series(1, jsonb_array_length(c.v)) j(i)),
             (SELECT sum(((c.v ->> (j.i - 1)::int)::float8 - (p -> 'center' ->> (j.i - 1)::int)::float8) * (p -> 'components' -> 1 ->> (j.i - 1)::int)::float8)
                FROM generate_series(1, jsonb_array_length(c.v)) j(i)),
             CASE WHEN t.artifact ? 'groups'
                  THEN (SELECT g.i::int FROM jsonb_array_elements(t.artifact -> 'groups') WITH ORDINALITY g(e, i) WHERE g.e @> to_jsonb(c.o - 1) LIMIT 1)
                  ELSE c.o::int END,
             NULL::jsonb, NULL::float8, NULL::float8
        FROM jsonb_array_elements(t.artifact -> 'centroids') WITH ORDINALITY c(v, o)
       ORDER BY c.o;
    RETURN;
  END IF;
  IF options ? 'max_rows' THEN
    q := format('SELECT * FROM (%s) q ORDER BY random() LIMIT %s', q, (options ->> 'max_rows')::int);
  END IF;
  IF m.model_type = 'pca' THEN
    RETURN QUERY EXECUTE format('SELECT s.p[1], s.p[2], NULL::int, to_jsonb(s.q), NULL::float8, NULL::float8 FROM (SELECT q, %1$s(%2$s) AS p FROM (%3$s) q OFFSET 0) s',
                                t.scores_function, ml.feature_arguments(t.artifact), q);
    RETURN;
  END IF;
  RETURN QUERY EXECUTE format('SELECT c.extra[1], c.extra[2], c.centroid_id, c.input, c.membership_probability, c.outlier_score FROM (%s) c',
                              ml.clustering_rows_sql(m, t, q, 1, format('%s(%s)', p ->> 'function', ml.feature_arguments(t.artifact))));
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_project(text, text, jsonb) IS
  'sqlml: x, y (the first two principal components of the model''s prepared features), centroid_id, the input row and (density models) membership_probability and outlier_score for every row of a query (option max_rows: a random sample); without a query, the centroids or exemplars';
