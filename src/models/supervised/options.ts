import { categoryOptions, type CategoryOptions } from '../../features/prepare.ts';
import type { LinearParams } from '../linear/train.ts';
import type { EnsembleParams } from '../trees/ensemble.ts';

// Options of the supervised model types as validated by ml.validate_options (SQL), with
// BigQuery ML's defaults filled in (CREATE MODEL for linear/logistic regression, boosted trees
// and random forests), except where they measurably cost quality (bench/supervised.ts, on
// 40,000 rows against scikit-learn's HistGradientBoosting): boosted trees take 100 rounds at
// learn_rate 0.1 (BigQuery: 20 at 0.3) and stop early when 10 rounds have not lowered the
// evaluation loss (BigQuery: the first round that improves it by less than 1%, which stopped
// after 2-3 rounds there). The README lists these choices.

export const SUPERVISED_TYPES = [
  'linear_reg',
  'logistic_reg',
  'boosted_tree_regressor',
  'boosted_tree_classifier',
  'random_forest_regressor',
  'random_forest_classifier',
  'auto',
] as const;
export type SupervisedType = (typeof SUPERVISED_TYPES)[number];
export type Family = 'linear' | 'boosted' | 'forest';

export function familyOf(t: Exclude<SupervisedType, 'auto'>): Family {
  if (t === 'linear_reg' || t === 'logistic_reg') return 'linear';
  return t.startsWith('boosted') ? 'boosted' : 'forest';
}

export function isClassifier(t: Exclude<SupervisedType, 'auto'>): boolean {
  return t === 'logistic_reg' || t.endsWith('_classifier');
}

export type SplitMethod = 'auto_split' | 'random' | 'custom' | 'seq' | 'no_split';

/** Default of option max_classes: BigQuery ML's classifiers stop at 50 (logistic) to a few hundred classes. */
export const DEFAULT_MAX_CLASSES = 100;

export interface SupervisedSettings {
  label: string;
  problemType: 'regression' | 'binary_classification' | 'multiclass_classification' | null;
  split: SplitMethod;
  evalFraction: number;
  splitColumn: string | null;
  exclude: string[];
  categories: CategoryOptions;
  categoryEncoding: 'one_hot' | 'label' | null; // null: the family's default
  classWeights: Record<string, number> | null;
  autoClassWeights: boolean;
  /** A classifier's bound on distinct labels: each class costs a margin per row and per tree. */
  maxClasses: number;
  seed: number | null;
  maxRuntimeSeconds: number | null;
  objective: string | null; // auto's selection metric
  options: Record<string, unknown>;
}

type Options = Record<string, unknown>;

const num = (o: Options, k: string): number | undefined => (typeof o[k] === 'number' ? (o[k] as number) : undefined);

export function supervisedSettings(o: Options): SupervisedSettings {
  const labels = o.input_label_cols ?? o.target;
  const label = Array.isArray(labels) ? String(labels[0]) : typeof labels === 'string' ? labels : 'label';
  const enc = o.category_encoding_method as string | undefined;
  return {
    label,
    problemType: (o.problem_type as SupervisedSettings['problemType']) ?? null,
    split: (o.data_split_method as SplitMethod) ?? 'auto_split',
    evalFraction: num(o, 'data_split_eval_fraction') ?? 0.2,
    splitColumn: typeof o.data_split_col === 'string' ? o.data_split_col : null,
    exclude: Array.isArray(o.exclude) ? (o.exclude as string[]) : [],
    categories: categoryOptions(o),
    categoryEncoding: enc === 'label_encoding' ? 'label' : enc === 'one_hot_encoding' ? 'one_hot' : null,
    classWeights: (o.class_weights as Record<string, number>) ?? null,
    autoClassWeights: o.auto_class_weights === true,
    maxClasses: num(o, 'max_classes') ?? DEFAULT_MAX_CLASSES,
    seed: num(o, 'seed') ?? null,
    maxRuntimeSeconds: num(o, 'max_runtime') ?? null,
    objective: typeof o.objective === 'string' ? o.objective : null,
    options: o,
  };
}

export function linearParams(o: Options): LinearParams {
  return {
    l1: num(o, 'l1_reg') ?? 0,
    l2: num(o, 'l2_reg') ?? 0,
    maxIterations: num(o, 'max_iterations') ?? 200,
    fitIntercept: o.fit_intercept !== false,
  };
}

export function ensembleParams(family: 'boosted' | 'forest', o: Options, seed: number, deadline?: number): EnsembleParams {
  const forest = family === 'forest';
  return {
    rounds: forest ? 1 : num(o, 'max_iterations') ?? 100,
    numParallelTree: num(o, 'num_parallel_tree') ?? (forest ? 100 : 1),
    maxDepth: num(o, 'max_tree_depth') ?? (forest ? 15 : 6),
    learnRate: forest ? 1 : num(o, 'learn_rate') ?? 0.1,
    l1: num(o, 'l1_reg') ?? 0,
    l2: num(o, 'l2_reg') ?? 1,
    minChildWeight: num(o, 'min_tree_child_weight') ?? 1,
    minSplitLoss: num(o, 'min_split_loss') ?? 0,
    subsample: num(o, 'subsample') ?? (forest ? 0.8 : 1),
    colsampleBynode: num(o, 'colsample_bynode') ?? (forest ? 0.8 : 1),
    earlyStop: forest ? false : o.early_stop !== false,
    minRelProgress: num(o, 'min_rel_progress') ?? 0,
    patience: 10,
    seed,
    deadline,
  };
}
