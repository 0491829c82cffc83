import { chromium } from 'playwright-core';
const b = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });
const p = await b.newPage({ viewport: { width: 1150, height: 900 } });
for (const m of process.argv.slice(2)) {
  await p.goto('file:///tmp/r-' + m + '.html');
  await p.screenshot({ path: '/tmp/s-' + m + '.png', fullPage: true });
}
await b.close();
