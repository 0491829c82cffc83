import { benchDatabase } from './lib.ts';
import { benchTraining } from './training.ts';
const db = await benchDatabase();
const r = await benchTraining(db, { rows: 500_000, k: 8, sklearn: false });
console.log(process.env.NODE_OPTIONS ?? 'default', 'ours', r.ourSeconds.toFixed(2), 'copy', r.copySeconds.toFixed(2), 'rss', r.peakRssMb?.toFixed(0));
await db.close();
