import type { Column } from '../data/columns.ts';
import { loadTrainingData, textSql, type ColumnType, type ExtraColumn, type LoadedData } from '../data/load.ts';
import { quoteIdent } from '../db/connect.ts';
import { isClassifier, type SupervisedSettings, type SupervisedType } from '../models/supervised/options.ts';
import { marginsPerRow, type Problem, type Target } from '../models/supervised/target.ts';
import { UserError } from '../util/errors.ts';
import type { JobContext } from './context.ts';

// The label side of a supervised training: read the labelled rows (NULL labels are not
// trained on), the label in the form the problem needs, the data split column; then the
// problem type, the classes in order and the per-row class weights.

/** The data_split_col values (custom: 0/1, seq: dense rank), when the split method reads one. */
export function splitColumn(data: LoadedData): { values: Float64Array; nulls: Uint8Array } | undefined {
  const c = data.extras.get('split')?.column;
  return c && c.kind === 'numeric' ? { values: c.values, nulls: c.nulls } : undefined;
}

/** Reads the rows with a label (NULL labels are not trained on), the label, and the split column. */
export async function loadLabelled(ctx: JobContext, s: SupervisedSettings, modelType: SupervisedType): Promise<LoadedData> {
  const label = quoteIdent(s.label);
  const regression = modelType === 'auto' ? s.problemType === 'regression' : !isClassifier(modelType);
  const classification = modelType === 'auto' ? s.problemType !== null && s.problemType !== 'regression' : isClassifier(modelType);
  const labelKinds = new Set(['N', 'B', 'S', 'E']);
  const extras: ExtraColumn[] = [
    {
      name: s.label,
      key: 'label',
      option: 'input_label_cols',
      choose: (col: ColumnType) => {
        if (!labelKinds.has(col.typcategory)) {
          throw new UserError(`label column "${s.label}" has type ${col.type}; a label must be a number, boolean or text (cast it in the query)`);
        }
        if (col.typcategory !== 'N') {
          if (regression) {
            throw new UserError(
              `label column "${s.label}" has type ${col.type}, but ${modelType === 'auto' ? 'problem_type regression' : modelType} predicts a number; use a classifier (logistic_reg, boosted_tree_classifier) or cast the label`,
            );
          }
          return { sql: textSql(col, `q.${label}`), kind: 'text' };
        }
        return classification ? { sql: textSql(col, `q.${label}`), kind: 'text' } : { sql: `q.${label}::float8`, kind: 'float8' };
      },
    },
  ];
  // auto with a numeric label decides the problem from the values: read it as text too.
  if (modelType === 'auto' && !regression && !classification) {
    extras.push({ name: s.label, key: 'label_text', option: 'input_label_cols', choose: (col) => ({ sql: textSql(col, `q.${label}`), kind: 'text' }) });
  }
  if (s.splitColumn && (s.split === 'custom' || s.split === 'seq')) {
    const c = quoteIdent(s.splitColumn);
    extras.push({
      name: s.splitColumn,
      key: 'split',
      option: 'data_split_col',
      choose: (col) => {
        if (s.split === 'custom') {
          if (col.typname !== 'bool') throw new UserError(`column "${s.splitColumn}" named by "data_split_col" must be boolean for data_split_method custom (TRUE or NULL = evaluation); it is ${col.type}`);
          return { sql: `(q.${c})::int::float8`, kind: 'float8' };
        }
        return { sql: `(CASE WHEN q.${c} IS NULL THEN NULL ELSE dense_rank() OVER (ORDER BY q.${c}) END)::float8`, kind: 'float8' };
      },
    });
  }
  const data = await loadTrainingData({
    source: ctx.source,
    statementTimeoutMs: ctx.statementTimeoutMs,
    maxBytes: ctx.maxBytes,
    onRows: (rows) => ctx.report({ phase: 'load', rows, rows_expected: ctx.source.estimatedRows }),
    exclude: s.exclude,
    extras,
    where: `q.${label} IS NOT NULL`,
  });
  if (data.table.rows === 0) throw new UserError(`the training query returned no rows with a non-NULL label "${s.label}"`);
  return data;
}

export function buildTarget(data: LoadedData, s: SupervisedSettings, modelType: SupervisedType): Target {
  const n = data.table.rows;
  const numeric = data.extras.get('label')!;
  let problem: Problem;
  let text: Column | undefined = numeric.column.kind === 'categorical' ? numeric.column : data.extras.get('label_text')?.column;
  if (modelType !== 'auto') problem = isClassifier(modelType) ? 'binary' : 'regression';
  else if (s.problemType === 'regression') problem = 'regression';
  else if (s.problemType) problem = 'binary';
  else if (numeric.column.kind === 'categorical') problem = 'binary';
  else {
    // A numeric label with two values is a yes/no question; anything else is a quantity.
    problem = text && text.kind === 'categorical' && text.categories.length === 2 ? 'binary' : 'regression';
  }
  const w = new Float64Array(n).fill(1);
  if (problem === 'regression') {
    const col = numeric.column;
    if (col.kind !== 'numeric') throw new Error('regression label read as text');
    for (let i = 0; i < n; i++) {
      if (!Number.isFinite(col.values[i]!)) throw new UserError(`label column "${s.label}" has the value ${col.values[i]} (row ${i + 1}); a regression label must be a finite number`);
    }
    return { problem, y: col.values, w, classes: null, K: 1 };
  }
  if (!text || text.kind !== 'categorical') throw new Error('classification label not read as text');
  const isNumber = numeric.type.typcategory === 'N';
  const present = [...new Set(Array.from(text.codes))].map((c) => text!.categories[c] as string);
  const classes = present.sort(isNumber ? (a, b) => Number(a) - Number(b) : (a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (classes.length < 2) {
    throw new UserError(`label column "${s.label}" has a single value (${classes[0]}) in the training rows; a classifier needs at least two classes`);
  }
  if (s.problemType === 'binary_classification' && classes.length !== 2) {
    throw new UserError(`problem_type binary_classification needs a label with two values; "${s.label}" has ${classes.length}`);
  }
  if (classes.length > 2) problem = 'multiclass';
  if (classes.length > s.maxClasses) {
    throw new UserError(
      `label column "${s.label}" has ${classes.length} distinct values; a classifier accepts at most ${s.maxClasses} classes (option "max_classes"): group rare labels in the query, or use a regression model if the label is a quantity`,
    );
  }
  if (modelType === 'logistic_reg' && classes.length > 50) {
    throw new UserError(`label column "${s.label}" has ${classes.length} distinct values; logistic_reg accepts at most 50 classes (as BigQuery ML)`);
  }
  const index = new Map(classes.map((c, i) => [c, i]));
  const codeClass = Int32Array.from(text.categories, (c) => index.get(c as string) ?? -1);
  const y = new Float64Array(n);
  for (let i = 0; i < n; i++) y[i] = codeClass[text.codes[i]!]!;
  const counts = new Float64Array(classes.length);
  for (let i = 0; i < n; i++) counts[y[i]!] += 1;
  if (s.classWeights) {
    const missing = classes.filter((c) => typeof s.classWeights![c] !== 'number');
    if (missing.length) throw new UserError(`"class_weights" must give a weight to every class; missing: ${missing.join(', ')} (classes: ${classes.join(', ')})`);
    for (let i = 0; i < n; i++) w[i] = s.classWeights[classes[y[i]!]!]!;
  } else if (s.autoClassWeights) {
    for (let i = 0; i < n; i++) w[i] = n / (counts[y[i]!]! * classes.length);
  }
  return { problem, y, w, classes, K: marginsPerRow(problem, classes.length) };
}
