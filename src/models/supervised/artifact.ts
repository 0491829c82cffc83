import type { Feature } from '../../features/prepare.ts';
import type { RocPoint, ScoreDecile } from '../../metrics/supervised.ts';
import type { Ensemble } from '../trees/ensemble.ts';
import type { FlatForest } from '../trees/shap.ts';
import type { Problem } from './target.ts';
import type { CompiledSupervised } from './to-sql.ts';

/** What scoring and explaining a supervised model replay (ml.models.artifact / ml.trials.artifact). */
export interface SupervisedArtifact {
  family: 'linear' | 'trees';
  model_type: string;
  problem: Problem;
  classes: string[] | null;
  label: string;
  label_type: string;
  features: Feature[];
  dims: number;
  standardize: boolean;
  linear?: { weights: number[][]; intercepts: number[] };
  /**
   * Stored with its base margins only: the trees are explanation.forest (node arrays that SQL
   * reads; unflatten() in trees/shap.ts gives the trees back). A forest's JSON is ~0.8 MB for
   * 100 trees of depth 6, and jsonb parses it at ~100 ms per MB.
   */
  ensemble?: Ensemble;
  /** Per input column: split count, mean gain and mean cover (trees), and the family's headline importance. */
  importance: { feature: string; weight: number | null; gain: number | null; cover: number | null; importance: number }[];
  /**
   * baseline: per margin, where attributions start (linear: the mean row's margin; trees: the
   * base score plus each tree's cover-weighted mean leaf). expected (linear): each feature's
   * mean contribution per margin. forest + dim_feature (trees): the flattened trees TreeSHAP
   * walks in SQL and the input column (1-based) of every model-space dimension. global: mean
   * |attribution| per feature (and per class) on the evaluation rows.
   */
  explanation?: {
    baseline: number[];
    expected?: number[][];
    forest?: FlatForest;
    dim_feature?: number[];
    global?: { class?: string; feature: string; attribution: number }[];
  };
  /**
   * On the evaluation rows: the ROC curve (binary), the confusion matrix (classifiers), the score
   * deciles (binary and regression: lift, gain, calibration). Aggregates only: a reader of the
   * model sees no row of the training data.
   */
  evaluation: { rows: number; roc_curve?: RocPoint[]; confusion_matrix?: number[][]; deciles?: ScoreDecile[] };
}

export function compiledOf(a: SupervisedArtifact): CompiledSupervised {
  return {
    spec: { features: a.features, dims: a.dims, standardize: a.standardize },
    problem: a.problem,
    classes: a.classes,
    labelType: a.label_type,
    linear: a.linear,
    ensemble: a.ensemble,
  };
}
