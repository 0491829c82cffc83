// Entry of a k-means worker thread: worker threads do not inherit the main thread's TypeScript
// loader, so register tsx here, then load the TypeScript worker.
import { register } from 'tsx/esm/api';

register();
await import('./thread.ts');
