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
  IF m.model_type <> 'pca' THEN
    PERFORM ml.invalid(format('ml_principal_components is for pca models; "%s" is a %s model', m.model_name, m.model_type));
  END IF;
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
  IF m.model_type <> 'pca' THEN
    PERFORM ml.invalid(format('ml_principal_component_info is for pca models; "%s" is a %s model', m.model_name, m.model_type));
  END IF;
  RETURN QUERY
    SELECT e.i::int, e.v::text::float8, (a -> 'explained_variance_ratio' ->> (e.i::int - 1))::float8,
           sum((a -> 'explained_variance_ratio' ->> (e.i::int - 1))::float8) OVER (ORDER BY e.i)
      FROM jsonb_array_elements(a -> 'eigenvalues') WITH ORDINALITY e(v, i)
     WHERE e.i <= jsonb_array_length(a -> 'components')
     ORDER BY e.i;
END $$;
COMMENT ON FUNCTION @api@.ml_principal_component_info(text) IS
  'sqlml: per principal component its eigenvalue, explained variance ratio and the cumulative ratio, as BigQuery ML.PRINCIPAL_COMPONENT_INFO';
