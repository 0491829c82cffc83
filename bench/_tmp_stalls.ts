import { benchDatabase } from './lib.ts';
import { benchStalls, printStalls } from './stalls.ts';
const db = await benchDatabase();
try { printStalls(await benchStalls(db, { rows: Number(process.argv[2]), densityRows: Number(process.argv[3]) })); } finally { await db.close(); }
