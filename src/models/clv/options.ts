// A clv model's settings, from its options as ml_create_model checked and completed them
// (sql/api/clv.sql: the column names are resolved there, as the requester).

export interface ClvSettings {
  customerCol: string;
  timeCol: string;
  valueCol: string | null;
  timeUnit: 'day' | 'week' | 'month';
  observationEnd: string | null; // ISO date
  calibrationEnd: string | null;
  purchaseModel: 'bg_nbd' | 'mbg_nbd' | 'pareto_nbd' | 'auto';
  spendModel: 'gamma_gamma' | 'none';
  penalizer: number;
  horizon: number;
  discountRate: number;
}

type Options = Record<string, unknown>;
const str = (o: Options, k: string): string | null => (typeof o[k] === 'string' ? (o[k] as string) : null);
const num = (o: Options, k: string): number | null => (typeof o[k] === 'number' ? (o[k] as number) : null);

export function clvSettings(o: Options): ClvSettings {
  const valueCol = str(o, 'value_col');
  return {
    customerCol: str(o, 'customer_col')!,
    timeCol: str(o, 'time_col')!,
    valueCol,
    timeUnit: (str(o, 'time_unit')?.toLowerCase() as ClvSettings['timeUnit']) ?? 'week',
    observationEnd: str(o, 'observation_end'),
    calibrationEnd: str(o, 'calibration_end'),
    purchaseModel: (str(o, 'purchase_model')?.toLowerCase() as ClvSettings['purchaseModel']) ?? 'bg_nbd',
    spendModel: valueCol && str(o, 'spend_model')?.toLowerCase() !== 'none' ? 'gamma_gamma' : 'none',
    penalizer: num(o, 'penalizer') ?? 0,
    horizon: num(o, 'horizon') ?? 52,
    discountRate: num(o, 'discount_rate') ?? 0,
  };
}
