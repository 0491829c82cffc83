import type { BgNbd } from './bgnbd.ts';
import type { GammaGamma } from './gamma-gamma.ts';
import type { ParetoNbd } from './pareto-nbd.ts';
import type { CompiledClv } from './to-sql.ts';

/** What a clv model version stores (ml.models.artifact): fitted parameters and how to score. */
export type ClvArtifact = {
  purchase_standard_errors: Record<string, number>;
  spend_model: 'gamma_gamma' | 'none';
  spend: GammaGamma | null;
  spend_standard_errors: Record<string, number> | null;
  horizon: number;
  discount_rate: number;
  time_unit: string;
  customer_col: string;
  time_col: string;
  value_col: string | null;
} & ({ purchase_model: 'bg_nbd' | 'mbg_nbd'; purchase: BgNbd } | { purchase_model: 'pareto_nbd'; purchase: ParetoNbd });

export function compiledClv(a: ClvArtifact): CompiledClv {
  const common = { spend: a.spend, horizon: a.horizon, discountRate: a.discount_rate };
  return a.purchase_model === 'pareto_nbd' ? { ...common, model: a.purchase_model, purchase: a.purchase } : { ...common, model: a.purchase_model, purchase: a.purchase };
}
