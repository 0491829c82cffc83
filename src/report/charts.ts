import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

// Charts as declarative Vega-Lite specifications, rendered to SVG strings in Node (no browser,
// no canvas: Vega's string renderer). Every builder takes plain rows and returns a spec; render()
// turns a spec into inline SVG, whose text Vega escapes.

type Row = Record<string, unknown>;
const WIDTH = 420;
const HEIGHT = 260;

const base = (title: string, subtitle?: string) => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  title: subtitle ? { text: title, subtitle } : title,
  width: WIDTH,
  height: HEIGHT,
  config: { font: 'Helvetica, Arial, sans-serif', title: { fontSize: 14, anchor: 'start' as const }, axis: { labelFontSize: 11, titleFontSize: 12 } },
});

export async function render(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export function bars(title: string, rows: Row[], x: string, y: string, o: { xTitle?: string; yTitle?: string; horizontal?: boolean; subtitle?: string } = {}): TopLevelSpec {
  const cat = { field: x, type: 'nominal' as const, title: o.xTitle ?? x, sort: null };
  const val = { field: y, type: 'quantitative' as const, title: o.yTitle ?? y };
  return {
    ...base(title, o.subtitle),
    height: o.horizontal ? Math.max(120, rows.length * 18) : HEIGHT,
    data: { values: rows },
    mark: { type: 'bar', color: '#4c78a8' },
    encoding: o.horizontal ? { y: cat, x: val } : { x: cat, y: val },
  } as TopLevelSpec;
}

/** Lines over x, one per series (rows carry a `series` field), with points; marked points drawn larger. */
export function lines(title: string, rows: Row[], x: string, y: string, o: { xTitle?: string; yTitle?: string; series?: string; diagonal?: boolean; subtitle?: string; xZero?: boolean; integerX?: boolean } = {}): TopLevelSpec {
  const layers: unknown[] = [{
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: x, type: 'quantitative', title: o.xTitle ?? x, scale: { zero: o.xZero ?? false }, ...(o.integerX ? { axis: { tickMinStep: 1, format: 'd' } } : {}) },
      y: { field: y, type: 'quantitative', title: o.yTitle ?? y, scale: { zero: false } },
      ...(o.series ? { color: { field: o.series, type: 'nominal', title: null } } : {}),
    },
  }];
  if (rows.some((r) => r.marked)) {
    layers.push({
      transform: [{ filter: 'datum.marked' }],
      mark: { type: 'point', size: 220, color: '#e45756', strokeWidth: 3 },
      encoding: { x: { field: x, type: 'quantitative' }, y: { field: y, type: 'quantitative' } },
    });
    layers.push({
      transform: [{ filter: 'datum.marked' }],
      mark: { type: 'text', dy: -16, color: '#e45756', fontWeight: 'bold' },
      encoding: { x: { field: x, type: 'quantitative' }, y: { field: y, type: 'quantitative' }, text: { field: 'marked' } },
    });
  }
  if (o.diagonal) {
    layers.push({
      data: { values: [{ [x]: 0, [y]: 0 }, { [x]: 1, [y]: 1 }] },
      mark: { type: 'line', strokeDash: [4, 4], color: '#999' },
      encoding: { x: { field: x, type: 'quantitative' }, y: { field: y, type: 'quantitative' } },
    });
  }
  return { ...base(title, o.subtitle), data: { values: rows }, layer: layers } as TopLevelSpec;
}

/** Points coloured by a category, with optional larger marks (centroids) drawn on top. */
export function scatter(title: string, rows: Row[], o: { x: string; y: string; color: string; xTitle?: string; yTitle?: string; centres?: Row[]; centreMark?: 'cross' | 'diamond'; subtitle?: string }): TopLevelSpec {
  const enc = {
    x: { field: o.x, type: 'quantitative', title: o.xTitle ?? o.x, scale: { zero: false } },
    y: { field: o.y, type: 'quantitative', title: o.yTitle ?? o.y, scale: { zero: false } },
  };
  const layers: unknown[] = [{
    mark: { type: 'point', filled: true, size: 22, opacity: 0.65 },
    encoding: { ...enc, color: { field: o.color, type: 'nominal', title: o.color, scale: { scheme: 'tableau10' } } },
  }];
  if (o.centres?.length) {
    layers.push({
      data: { values: o.centres },
      mark: o.centreMark === 'diamond'
        ? { type: 'point', shape: 'diamond', size: 40, filled: false, color: '#111', strokeWidth: 1, opacity: 0.8 }
        : { type: 'point', shape: 'cross', size: 260, filled: true, color: '#111', strokeWidth: 1 },
      encoding: enc,
    });
  }
  return { ...base(title, o.subtitle), data: { values: rows }, layer: layers } as TopLevelSpec;
}

/** A heat map of value over (x, y) with the value printed in each cell; diverging around 0 when `diverging`. */
export function heatmap(title: string, rows: Row[], o: { x: string; y: string; value: string; label?: string; diverging?: boolean; subtitle?: string; xTitle?: string; yTitle?: string; format?: string; domain?: [number, number] }): TopLevelSpec {
  const xs = new Set(rows.map((r) => r[o.x])).size;
  const ys = new Set(rows.map((r) => r[o.y])).size;
  // cell text in white where the colour behind it is dark
  const values = rows.map((r) => Number(r[o.value])).filter(Number.isFinite);
  const [lo, hi] = o.domain ?? [Math.min(...values), Math.max(...values)];
  const field = `datum[${JSON.stringify(o.value)}]`;
  const dark = o.diverging
    ? `abs(${field}) > ${0.6 * Math.max(...values.map(Math.abs), 1e-12)}`
    : `${field} > ${lo + 0.6 * (hi - lo)}`;
  const enc = {
    x: { field: o.x, type: 'nominal', title: o.xTitle ?? o.x, sort: null, axis: { labelAngle: -40, labelLimit: 140 } },
    y: { field: o.y, type: 'nominal', title: o.yTitle ?? o.y, sort: null, axis: { labelLimit: 180 } },
  };
  return {
    ...base(title, o.subtitle),
    width: Math.min(760, Math.max(160, xs * 46)),
    height: Math.max(80, ys * 22),
    data: { values: rows },
    layer: [
      { mark: 'rect', encoding: { ...enc, color: { field: o.value, type: 'quantitative', title: o.label ?? o.value, scale: o.diverging ? { scheme: 'redblue', domainMid: 0, reverse: true } : { scheme: 'blues', ...(o.domain ? { domain: o.domain } : {}) } } } },
      { mark: { type: 'text', fontSize: 9 }, encoding: { ...enc, text: { field: o.value, type: 'quantitative', format: o.format ?? '.2f' }, color: { condition: { test: dark, value: 'white' }, value: 'black' } } },
    ],
  } as TopLevelSpec;
}

/** A histogram of one numeric field. */
export function histogram(title: string, rows: Row[], field: string, o: { xTitle?: string; subtitle?: string } = {}): TopLevelSpec {
  return {
    ...base(title, o.subtitle),
    data: { values: rows },
    mark: { type: 'bar', color: '#4c78a8' },
    encoding: {
      x: { field, type: 'quantitative', bin: { maxbins: 30 }, title: o.xTitle ?? field },
      y: { aggregate: 'count', type: 'quantitative', title: 'rows' },
    },
  } as TopLevelSpec;
}

/** Two measures per category side by side (e.g. expected and actual purchases). */
export function groupedBars(title: string, rows: Row[], x: string, o: { xTitle?: string; yTitle?: string; subtitle?: string }): TopLevelSpec {
  return {
    ...base(title, o.subtitle),
    data: { values: rows },
    mark: 'bar',
    encoding: {
      x: { field: x, type: 'nominal', title: o.xTitle ?? x, sort: null },
      xOffset: { field: 'series', type: 'nominal' },
      y: { field: 'value', type: 'quantitative', title: o.yTitle ?? 'value' },
      color: { field: 'series', type: 'nominal', title: null },
    },
  } as TopLevelSpec;
}
