import { expectedPurchases, fitBgNbd, PARAMETERS, type BgNbd, type Fit, type RfmData } from './bgnbd.ts';
import { fitParetoNbd, PARETO_PARAMETERS, paretoExpectedPurchases, type ParetoNbd } from './pareto-nbd.ts';

// The purchase models behind one interface: which to fit, and what a fitted one predicts.

export type PurchaseModelKind = 'bg_nbd' | 'mbg_nbd' | 'pareto_nbd';

export type FittedPurchase = { kind: 'bg_nbd' | 'mbg_nbd'; params: BgNbd } | { kind: 'pareto_nbd'; params: ParetoNbd };

export async function fitPurchase(kind: PurchaseModelKind, d: RfmData, penalizer: number): Promise<{ fitted: FittedPurchase; fit: Fit<BgNbd | ParetoNbd> }> {
  if (kind === 'pareto_nbd') {
    const fit = await fitParetoNbd(d, penalizer);
    return { fitted: { kind, params: fit.model }, fit };
  }
  const fit = await fitBgNbd(d, penalizer, kind);
  return { fitted: { kind, params: fit.model }, fit };
}

export function parameterNames(kind: PurchaseModelKind): readonly string[] {
  return kind === 'pareto_nbd' ? PARETO_PARAMETERS : PARAMETERS;
}

export function expectedPurchasesOf(m: FittedPurchase, x: number, tx: number, T: number, t: number): number {
  return m.kind === 'pareto_nbd' ? paretoExpectedPurchases(m.params, x, tx, T, t) : expectedPurchases(m.params, x, tx, T, t);
}
