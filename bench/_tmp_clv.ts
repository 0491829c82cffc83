import { benchDatabase } from './lib.ts';
import { benchClv, printClv } from './clv.ts';
const db = await benchDatabase();
try { printClv(await benchClv(db, { customers: Number(process.argv[2]) })); } finally { await db.close(); }
