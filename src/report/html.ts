// The report's page: one self-contained HTML document (inline SVG and CSS). Its
// Content-Security-Policy allows no script and no request: opened from a file or served by the
// console, the page cannot reach the network. Every text from the database goes through esc().

export interface Section {
  title: string;
  /** Each block: an SVG chart, a table or a note (all already HTML). */
  blocks: string[];
}

export function esc(s: unknown): string {
  return String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

export function fmt(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return v.toLocaleString('en-US');
    return Math.abs(v) >= 1000 ? v.toLocaleString('en-US', { maximumFractionDigits: 1 }) : Number(v.toPrecision(4)).toString();
  }
  if (v instanceof Date) return v.toISOString().replace('T', ' ').slice(0, 19);
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

export function table(rows: Record<string, unknown>[], columns?: string[], caption?: string): string {
  if (!rows.length) return note('no rows');
  const cols = columns ?? Object.keys(rows[0]!);
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join('');
  const body = rows
    .map((r) => `<tr>${cols.map((c) => `<td class="${typeof r[c] === 'number' ? 'num' : ''}">${esc(fmt(r[c]))}</td>`).join('')}</tr>`)
    .join('\n');
  return `<table>${caption ? `<caption>${esc(caption)}</caption>` : ''}<thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

export function note(text: string): string {
  return `<p class="note">${esc(text)}</p>`;
}

export function figure(svg: string, name: string): string {
  return `<figure class="chart" data-chart="${esc(name)}">${svg}</figure>`;
}

const CSS = `
body { font: 14px/1.45 Helvetica, Arial, sans-serif; color: #222; margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 24px; margin-bottom: 4px; } h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.sub { color: #555; margin-top: 0; }
.blocks { display: flex; flex-wrap: wrap; gap: 18px; align-items: flex-start; }
figure.chart { margin: 0; } figure.chart svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; font-size: 12px; margin: 4px 0; } caption { text-align: left; font-weight: bold; padding-bottom: 4px; }
th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: left; vertical-align: top; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f4f4f4; } .note { color: #666; font-style: italic; }
nav a { margin-right: 12px; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } figure.chart, table { break-inside: avoid; } nav { display: none; } }
`;

/** The whole page. `head`/`nav` are extra trusted HTML (the console's links). */
export function page(title: string, subtitle: string, sections: Section[], o: { nav?: string } = {}): string {
  const body = sections
    .filter((s) => s.blocks.length)
    .map((s) => `<section><h2>${esc(s.title)}</h2><div class="blocks">${s.blocks.join('\n')}</div></section>`)
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body>${o.nav ?? ''}<h1>${esc(title)}</h1><p class="sub">${esc(subtitle)}</p>
${body}
</body></html>
`;
}
