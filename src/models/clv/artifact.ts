import type { BgNbd } from './bgnbd.ts';
import type { GammaGamma } from './gamma-gamma.ts';
import type { CompiledClv } from './to-sql.ts';

/** What a clv model version stores (ml.models.artifact): fitted parameters and how to score. */
export interface ClvArtifact {
  purchase_model: 'bg_nbd' | 'mbg_nbd';
  purchase: BgNbd;
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
}

export function compiledClv(a: ClvArtifact): CompiledClv {
  return { purchase: a.purchase, spend: a.spend, horizon: a.horizon, discountRate: a.discount_rate };
}
