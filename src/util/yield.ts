/**
 * Lets the event loop run timers (heartbeats, progress, the cancel check) before going on.
 * One setImmediate is not enough when the caller was resumed from the poll phase (a worker
 * thread's message, a query's result): it resolves in the same loop turn, and timers would wait
 * for the next one. The second setImmediate is scheduled from the check phase, so the loop
 * passes through its timers phase in between — without setTimeout's 1 ms floor.
 */
export async function yieldToEventLoop(): Promise<void> {
  await new Promise<void>((resolve) => setImmediate(resolve));
  await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * For loops whose iterations vary in cost: `await pace()` in the loop yields once `budgetMs`
 * have passed since the last yield (a time budget holds on a loaded machine, where a fixed
 * count of iterations can take many times longer).
 */
export function pacer(budgetMs = 50, pause: () => Promise<void> = yieldToEventLoop): () => Promise<void> {
  let last = performance.now();
  return async () => {
    if (performance.now() - last < budgetMs) return;
    await pause();
    last = performance.now();
  };
}
