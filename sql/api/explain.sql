-- Why a model decides: feature importance, per-row attributions (exact linear contributions or
-- TreeSHAP) and their global means.

-- ML.FEATURE_IMPORTANCE: trees: importance_weight (splits), importance_gain (mean gain per
-- split), importance_cover (mean hessian cover per split) and importance = total gain;
-- linear models: importance = the standard deviation over the training rows of the column's
-- contribution to the margin (|coefficient| of a standardized numeric column; summed over
-- classes); clustering models: a surrogate tree that predicts the
-- segment (its fidelity is in ml_models.metrics).
CREATE OR REPLACE FUNCTION @api@.ml_feature_importance(model_name text, options jsonb DEFAULT '{}')
RETURNS TABLE (feature text, importance_weight float8, importance_gain float8, importance_cover float8, importance float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options);
BEGIN
  IF NOT t.artifact ? 'importance' THEN
    PERFORM ml.invalid(format('model "%s" (%s) has no feature importance; train it again with this version of sqlml', model_name, m.model_type));
  END IF;
  RETURN QUERY
    SELECT e ->> 'feature', (e ->> 'weight')::float8, (e ->> 'gain')::float8, (e ->> 'cover')::float8, (e ->> 'importance')::float8
    FROM jsonb_array_elements(t.artifact -> 'importance') e
    ORDER BY (e ->> 'importance')::float8 DESC, e ->> 'feature';
END $$;
COMMENT ON FUNCTION @api@.ml_feature_importance(text, jsonb) IS
  'sqlml: per input column: importance_weight, importance_gain, importance_cover (trees) and importance (the family''s headline measure)';

-- Path-dependent TreeSHAP (Lundberg, Erion & Lee 2018, Algorithm 2) over a flattened forest:
-- node arrays (1-based; feature -1 = leaf, children as node numbers), each tree's root and
-- margin group. Iterative depth-first walk: the path of the node at depth L lives in slot L of
-- pd/pz/po/pw (P elements per slot), and a node's children copy it from there. Returns the
-- SHAP value of every model-space dimension of x for the trees of margin `target_group`;
-- src/models/trees/shap.ts is the same algorithm, recursive, checked against brute force.
CREATE OR REPLACE FUNCTION ml.tree_shap(feat int[], thr float8[], lft int[], rgt int[], val float8[], cov float8[],
                             roots int[], grp int[], x float8[], target_group int, maxd int) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  nd int := coalesce(array_length(x, 1), 0);
  phi float8[] := array_fill(0::float8, ARRAY[nd]);
  P int := maxd + 2;
  pd int[] := array_fill(0, ARRAY[(maxd + 1) * (maxd + 2)]);
  pz float8[] := array_fill(0::float8, ARRAY[(maxd + 1) * (maxd + 2)]);
  po float8[] := array_fill(0::float8, ARRAY[(maxd + 1) * (maxd + 2)]);
  pw float8[] := array_fill(0::float8, ARRAY[(maxd + 1) * (maxd + 2)]);
  sn int[] := array_fill(0, ARRAY[2 * maxd + 2]);
  sl int[] := array_fill(0, ARRAY[2 * maxd + 2]);
  su int[] := array_fill(0, ARRAY[2 * maxd + 2]);
  sf int[] := array_fill(0, ARRAY[2 * maxd + 2]);
  sz float8[] := array_fill(0::float8, ARRAY[2 * maxd + 2]);
  so float8[] := array_fill(0::float8, ARRAY[2 * maxd + 2]);
  top int; t int; j int; lv int; ud int; base int; pbase int; i int; k int; f int;
  zf float8; onef float8; fi int; nxt float8; tmp float8; tot float8; one float8; zero float8;
  hot int; cold int; iz float8; io float8;
BEGIN
  FOR t IN 1 .. coalesce(array_length(roots, 1), 0) LOOP
    CONTINUE WHEN grp[t] <> target_group;
    top := 1; sn[1] := roots[t]; sl[1] := 0; su[1] := 0; sz[1] := 1; so[1] := 1; sf[1] := -1;
    WHILE top > 0 LOOP
      j := sn[top]; lv := sl[top]; ud := su[top]; zf := sz[top]; onef := so[top]; fi := sf[top];
      top := top - 1;
      base := lv * P;
      IF lv > 0 THEN
        pbase := (lv - 1) * P;
        FOR i IN 1 .. ud LOOP
          pd[base + i] := pd[pbase + i]; pz[base + i] := pz[pbase + i];
          po[base + i] := po[pbase + i]; pw[base + i] := pw[pbase + i];
        END LOOP;
      END IF;
      -- extend the path with (zf, onef, fi) at position ud (0-based)
      pd[base + ud + 1] := fi; pz[base + ud + 1] := zf; po[base + ud + 1] := onef;
      pw[base + ud + 1] := CASE WHEN ud = 0 THEN 1 ELSE 0 END;
      FOR i IN REVERSE ud - 1 .. 0 LOOP
        pw[base + i + 2] := pw[base + i + 2] + onef * pw[base + i + 1] * (i + 1) / (ud + 1);
        pw[base + i + 1] := zf * pw[base + i + 1] * (ud - i) / (ud + 1);
      END LOOP;
      f := feat[j];
      IF f < 0 THEN
        FOR i IN 1 .. ud LOOP
          one := po[base + i + 1]; zero := pz[base + i + 1];
          nxt := pw[base + ud + 1]; tot := 0;
          IF one <> 0 THEN
            FOR k IN REVERSE ud - 1 .. 0 LOOP
              tmp := nxt / ((k + 1) * one);
              tot := tot + tmp;
              nxt := pw[base + k + 1] - tmp * zero * (ud - k);
            END LOOP;
          ELSE
            FOR k IN REVERSE ud - 1 .. 0 LOOP
              tot := tot + pw[base + k + 1] / (zero * (ud - k));
            END LOOP;
          END IF;
          phi[pd[base + i + 1] + 1] := phi[pd[base + i + 1] + 1] + tot * (ud + 1) * (one - zero) * val[j];
        END LOOP;
      ELSE
        IF x[f + 1] <= thr[j] THEN hot := lft[j]; cold := rgt[j]; ELSE hot := rgt[j]; cold := lft[j]; END IF;
        iz := 1; io := 1; k := -1;
        FOR i IN 1 .. ud LOOP
          IF pd[base + i + 1] = f THEN k := i; EXIT; END IF;
        END LOOP;
        IF k > 0 THEN
          -- this feature was split on above: undo that split, to redo it here
          iz := pz[base + k + 1]; io := po[base + k + 1];
          nxt := pw[base + ud + 1];
          FOR i IN REVERSE ud - 1 .. 0 LOOP
            IF io <> 0 THEN
              tmp := pw[base + i + 1];
              pw[base + i + 1] := nxt * (ud + 1) / ((i + 1) * io);
              nxt := tmp - pw[base + i + 1] * iz * (ud - i) / (ud + 1);
            ELSE
              pw[base + i + 1] := pw[base + i + 1] * (ud + 1) / (iz * (ud - i));
            END IF;
          END LOOP;
          FOR i IN k .. ud - 1 LOOP
            pd[base + i + 1] := pd[base + i + 2]; pz[base + i + 1] := pz[base + i + 2]; po[base + i + 1] := po[base + i + 2];
          END LOOP;
          ud := ud - 1;
        END IF;
        top := top + 1;
        sn[top] := cold; sl[top] := lv + 1; su[top] := ud + 1; sz[top] := iz * cov[cold] / cov[j]; so[top] := 0; sf[top] := f;
        top := top + 1;
        sn[top] := hot; sl[top] := lv + 1; su[top] := ud + 1; sz[top] := iz * cov[hot] / cov[j]; so[top] := io; sf[top] := f;
      END IF;
    END LOOP;
  END LOOP;
  RETURN phi;
END $$;

-- values summed per group (1..n): model-space dimensions into input columns.
CREATE OR REPLACE FUNCTION ml.sum_by_group(vals float8[], groups int[], n int) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
  out float8[] := array_fill(0::float8, ARRAY[n]);
  i int;
BEGIN
  FOR i IN 1 .. coalesce(array_length(vals, 1), 0) LOOP
    out[groups[i]] := out[groups[i]] + vals[i];
  END LOOP;
  RETURN out;
END $$;

-- ML.EXPLAIN_PREDICT: per row, each input column's attribution to the margin (the value for
-- regression, the logit of the positive class for binary, the predicted class's margin for
-- multiclass), ranked by magnitude; they add up to prediction_value - baseline_prediction_value.
-- Linear models: contribution minus its mean over the training rows (exact). Trees: TreeSHAP
-- (exact Shapley values; a category's one-hot dimensions are summed).
CREATE OR REPLACE FUNCTION @api@.ml_explain_predict(model_name text, query text, options jsonb DEFAULT '{}')
RETURNS TABLE (input jsonb, predicted_value float8, predicted_label text, probability float8,
               top_feature_attributions jsonb, baseline_prediction_value float8, prediction_value float8,
               approximation_error float8)
LANGUAGE plpgsql AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['top_k_features', 'threshold']);
  q text := ml.safe_query(ml.strip_query(query));
  threshold float8 := ml.threshold_option(t, options);
  top_k int;
  nf int := jsonb_array_length(t.artifact -> 'features');
  e jsonb := t.artifact -> 'explanation';
  fo jsonb := t.artifact -> 'explanation' -> 'forest';
  attributions text;
BEGIN
  IF NOT t.artifact ? 'problem' THEN
    PERFORM ml.invalid(format('ml_explain_predict explains supervised models; for the segments of "%s" see ml_feature_importance and ml_profile_model', model_name));
  END IF;
  IF t.explain_function IS NULL THEN
    PERFORM ml.invalid(format('model "%s" was trained before ml_explain_predict existed; train it again', model_name));
  END IF;
  PERFORM ml.opt_int(options, 'top_k_features', 1, 10000);
  top_k := coalesce((options ->> 'top_k_features')::int, 5);
  IF t.artifact ->> 'family' = 'linear' THEN
    attributions := format('ARRAY(SELECT y.c[y.mk * %1$s + i] - (%2$L::jsonb -> y.mk ->> (i - 1))::float8 FROM generate_series(1, %1$s) i ORDER BY i)',
                           nf, e -> 'expected');
  ELSE
    -- One call per row: a subquery would be pulled up and call tree_shap once per dimension.
    attributions := format(
      'ml.sum_by_group(ml.tree_shap(%1$L::int[], %2$L::float8[], %3$L::int[], %4$L::int[], %5$L::float8[], %6$L::float8[], %7$L::int[], %8$L::int[], y.c, y.mk, %9$s), %11$L::int[], %12$s)',
      ARRAY(SELECT jsonb_array_elements_text(fo -> 'feature'))::int[], ARRAY(SELECT jsonb_array_elements_text(fo -> 'threshold'))::float8[],
      ARRAY(SELECT jsonb_array_elements_text(fo -> 'left'))::int[], ARRAY(SELECT jsonb_array_elements_text(fo -> 'right'))::int[],
      ARRAY(SELECT jsonb_array_elements_text(fo -> 'value'))::float8[], ARRAY(SELECT jsonb_array_elements_text(fo -> 'cover'))::float8[],
      ARRAY(SELECT jsonb_array_elements_text(fo -> 'roots'))::int[], ARRAY(SELECT jsonb_array_elements_text(fo -> 'groups'))::int[],
      (fo ->> 'max_depth')::int, (t.artifact ->> 'dims')::int,
      ARRAY(SELECT jsonb_array_elements_text(e -> 'dim_feature'))::int[], nf);
  END IF;
  RETURN QUERY EXECUTE format($q$
    SELECT to_jsonb(s.q),
           CASE WHEN %1$L = 'regression' THEN s.p[1] END,
           CASE WHEN %1$L <> 'regression' THEN (%2$L::text[])[s.k] END,
           CASE WHEN %1$L <> 'regression' THEN s.p[s.k] END,
           a.top, s.base, s.base + a.total, 0::float8
    FROM (SELECT y.*, (%3$L::jsonb ->> y.mk)::float8 AS base, %4$s AS att
            FROM (SELECT z.*, CASE WHEN %1$L = 'multiclass' THEN z.k - 1 ELSE 0 END AS mk
                    FROM (SELECT w.*, %5$s AS k
                            FROM (SELECT q, %6$s(%8$s) AS p, %7$s(%8$s) AS c FROM (%9$s) q OFFSET 0) w) z) y OFFSET 0) s
    CROSS JOIN LATERAL (
      SELECT jsonb_agg(jsonb_build_object('feature', b.f, 'attribution', b.v) ORDER BY b.r) FILTER (WHERE b.r <= %10$s) AS top,
             sum(b.v) AS total
      FROM (SELECT (%11$L::text[])[i] AS f, s.att[i] AS v, row_number() OVER (ORDER BY abs(s.att[i]) DESC, (%11$L::text[])[i]) AS r
              FROM generate_series(1, %12$s) i) b) a
  $q$, t.artifact ->> 'problem', ml.class_labels(t.artifact), e -> 'baseline', attributions,
       CASE WHEN t.artifact ->> 'problem' = 'regression' THEN '1' ELSE ml.predicted_class_sql(t.artifact, 'w.p') END,
       t.scores_function, t.explain_function, ml.feature_arguments(t.artifact), q, top_k,
       ARRAY(SELECT f ->> 'name' FROM jsonb_array_elements(t.artifact -> 'features') WITH ORDINALITY a(f, o) ORDER BY o), nf)
  USING threshold;
EXCEPTION WHEN undefined_column THEN
  PERFORM ml.raise_missing_feature(m, q, SQLERRM);
END $$;
COMMENT ON FUNCTION @api@.ml_explain_predict(text, text, jsonb) IS
  'sqlml: per row: the prediction, its top_k_features attributions (exact: linear contributions, or TreeSHAP) and the baseline they start from';

-- ML.GLOBAL_EXPLAIN: each input column's mean |attribution| over the evaluation rows (the
-- training rows without a split; at most 2,000 rows), computed at training time. With
-- class_level_explain, one row per (class, feature) of a multiclass model.
CREATE OR REPLACE FUNCTION @api@.ml_global_explain(model_name text, options jsonb DEFAULT '{}')
RETURNS TABLE (class_label text, feature text, attribution float8)
LANGUAGE plpgsql STABLE AS $$
DECLARE
  m ml.models := ml.resolve_model(model_name);
  t ml.trials := ml.model_trial(m, options, ARRAY['class_level_explain']);
  per_class boolean;
BEGIN
  PERFORM ml.opt_bool(options, 'class_level_explain');
  per_class := coalesce((options ->> 'class_level_explain')::boolean, false);
  IF NOT t.artifact -> 'explanation' ? 'global' THEN
    PERFORM ml.invalid(format('model "%s" (%s) has no global explanation; it is computed when a supervised model is trained', model_name, m.model_type));
  END IF;
  IF per_class AND t.artifact ->> 'problem' <> 'multiclass' THEN
    PERFORM ml.invalid('option "class_level_explain" applies to multiclass models');
  END IF;
  RETURN QUERY
    SELECT CASE WHEN per_class THEN g ->> 'class' END, g ->> 'feature', (g ->> 'attribution')::float8
    FROM jsonb_array_elements(t.artifact -> 'explanation' -> 'global') g
    WHERE (g ->> 'class' IS NULL) = NOT per_class
    ORDER BY g ->> 'class', (g ->> 'attribution')::float8 DESC, g ->> 'feature';
END $$;
COMMENT ON FUNCTION @api@.ml_global_explain(text, jsonb) IS
  'sqlml: per input column: mean |attribution| over the evaluation rows (per class with class_level_explain)';
