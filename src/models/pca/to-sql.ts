import type { FeatureSpec } from '../../features/prepare.ts';
import { modelSpaceLocals, num, parameterList, plpgsql } from '../compile.ts';

// A PCA model as SQL: the row in model space (as transform() builds it), centred, times each
// component's loadings: the principal component scores, as float8[].

export interface CompiledPca {
  spec: FeatureSpec;
  center: number[];
  components: number[][]; // k x dims
}

export function projectionFunctionSql(m: CompiledPca, qualifiedName: string): string {
  const declare: string[] = [];
  const body: string[] = [];
  modelSpaceLocals(m.spec, declare, body);
  const scores = m.components.map((w) => {
    let constant = 0;
    const parts: string[] = [];
    w.forEach((v, j) => {
      if (v === 0) return;
      constant -= v * m.center[j]!;
      parts.push(`v${j + 1} * ${num(v)}`);
    });
    return [num(constant), ...parts].join(' + ');
  });
  return `CREATE OR REPLACE FUNCTION ${qualifiedName}(${parameterList(m.spec)}) RETURNS float8[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS ${plpgsql(m.spec, declare, [...body, `RETURN ARRAY[${scores.join(', ')}]::float8[];`])}`;
}
