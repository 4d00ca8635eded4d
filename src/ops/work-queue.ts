// Work done by at most `concurrency` tasks at once, where a task may add more work (a directory
// listing adds its subdirectories). Taken last-in first-out: a tree walk goes depth first, so
// the pending work stays small, and taking an item costs O(1).
export async function runQueue<T>(
  initial: Iterable<T>,
  concurrency: number,
  work: (item: T, push: (item: T) => void) => Promise<void>,
): Promise<void> {
  const queue = [...initial].reverse();
  let active = 0;
  // Boxed, so a task that rejects with undefined still stops the queue.
  let failure: { error: unknown } | undefined;
  await new Promise<void>((resolve) => {
    const next = () => {
      if (failure !== undefined) return active === 0 && resolve();
      while (active < concurrency && queue.length > 0) {
        const item = queue.pop()!;
        active++;
        work(item, (more) => queue.push(more)).then(
          () => {
            active--;
            next();
          },
          (error: unknown) => {
            failure ??= { error };
            active--;
            next();
          },
        );
      }
      if (active === 0 && queue.length === 0) resolve();
    };
    next();
  });
  if (failure !== undefined) throw failure.error;
}

/** Calls `work` for every item of a (possibly huge, lazy) iterable, at most `concurrency` at once. */
export async function forEachConcurrent<T>(items: Iterable<T>, concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  const iterator = items[Symbol.iterator]();
  const lanes = Array.from({ length: concurrency }, async () => {
    for (let next = iterator.next(); !next.done; next = iterator.next()) await work(next.value);
  });
  await Promise.all(lanes);
}
