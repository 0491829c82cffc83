import { describe, expect, it } from 'vitest';
import { BinaryCopyParser } from '../src/data/copy-binary.ts';

// PostgreSQL's binary COPY format, written by hand: what the parser must read whatever the
// chunk boundaries are (the network cuts tuples anywhere, and a text value may be longer than
// the parser's look-ahead).
function encode(rows: [number | null, string | null][]): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const [x, t] of rows) {
    const head = Buffer.alloc(2);
    head.writeInt16BE(2);
    parts.push(head);
    const xb = Buffer.alloc(x === null ? 4 : 12);
    xb.writeInt32BE(x === null ? -1 : 8);
    if (x !== null) xb.writeDoubleBE(x, 4);
    parts.push(xb);
    const tb = t === null ? null : Buffer.from(t, 'utf8');
    const len = Buffer.alloc(4);
    len.writeInt32BE(tb === null ? -1 : tb.length);
    parts.push(len);
    if (tb) parts.push(tb);
  }
  const end = Buffer.alloc(2);
  end.writeInt16BE(-1);
  parts.push(end);
  return Buffer.concat(parts);
}

async function parse(stream: Buffer, chunk: number) {
  const p = new BinaryCopyParser(['x', 't'], ['float8', 'text']);
  for (let at = 0; at < stream.length; at += chunk) {
    await new Promise<void>((resolve, reject) => p.write(stream.subarray(at, at + chunk), (err) => (err ? reject(err) : resolve())));
  }
  await new Promise<void>((resolve) => p.end(resolve));
  const [x, t] = p.columns();
  return { rows: p.rows, x, t };
}

describe('binary COPY parser', () => {
  const rows: [number | null, string | null][] = [
    [1.5, 'a'],
    [null, 'b'],
    [-2.25, null],
    [3e300, 'é'.repeat(3000)], // 6,000 bytes: longer than the 4,096-byte look-ahead
    [0, 'a'],
    [7, 'z'.repeat(10)],
  ];
  // The same rows with the long one first: its tuple is cut while the header is still pending.
  const longFirst: [number | null, string | null][] = [rows[3]!, ...rows.slice(0, 3), ...rows.slice(4)];

  for (const [name, data] of [['rows', rows], ['rows, the long one first,', longFirst]] as const) for (const chunk of [1, 2, 3, 7, 19, 64, 4097, 6100, 1 << 20]) {
    it(`reads the same ${name} in chunks of ${chunk} bytes`, async () => {
      const rows = data;
      const r = await parse(encode(rows), chunk);
      expect(r.rows).toBe(rows.length);
      if (r.x!.kind !== 'numeric' || r.t!.kind !== 'categorical') throw new Error('column kinds');
      expect(Array.from(r.x!.values)).toEqual(rows.map(([x]) => x ?? 0));
      expect(Array.from(r.x!.nulls)).toEqual(rows.map(([x]) => (x === null ? 1 : 0)));
      expect(Array.from(r.t!.codes, (c) => r.t!.kind === 'categorical' && r.t!.categories[c])).toEqual(rows.map(([, t]) => t));
    });
  }
});

describe('binary COPY parser: long values', () => {
  it('reads a 3 MB value that arrives in 1,000-byte chunks, joining its chunks once (not at every chunk)', async () => {
    const big = 'q'.repeat(3 * 2 ** 20);
    const stream = encode([[1, 'a'], [2, big], [3, 'b']]);
    const concat = Buffer.concat;
    let copied = 0;
    Buffer.concat = ((list: readonly Uint8Array[], total?: number) => {
      const out = concat(list, total);
      copied += out.length;
      return out;
    }) as typeof Buffer.concat;
    try {
      const r = await parse(stream, 1000);
      if (r.t!.kind !== 'categorical') throw new Error('column kind');
      expect(Array.from(r.t!.codes, (c) => (r.t as { categories: (string | null)[] }).categories[c])).toEqual(['a', big, 'b']);
    } finally {
      Buffer.concat = concat;
    }
    // one join of the long tuple (plus the small joins of tuples cut at chunk ends)
    expect(copied).toBeLessThan(2 * stream.length);
  });

  it('refuses a value over MAX_VALUE_BYTES as soon as its length arrives, naming the column', async () => {
    const { MAX_VALUE_BYTES } = await import('../src/data/copy-binary.ts');
    const head = encode([[1, 'a']]).subarray(0, -2); // header and one row, no trailer
    const tuple = Buffer.alloc(2 + 12 + 4);
    tuple.writeInt16BE(2, 0);
    tuple.writeInt32BE(8, 2);
    tuple.writeDoubleBE(2, 6);
    tuple.writeInt32BE(MAX_VALUE_BYTES + 1, 14);
    const p = new BinaryCopyParser(['x', 'note'], ['float8', 'text']);
    p.on('error', () => undefined); // the write's callback gets the error
    const err = await new Promise<Error | null | undefined>((resolve) => {
      p.write(head, () => p.write(Buffer.concat([tuple, Buffer.alloc(70_000)]), resolve));
    });
    expect(String(err)).toMatch(/column "note" has a value of 64 MB \(row 2\); sqlml reads values up to 64 MB/);
  });
});
