// Waiting for what a test can observe, never for a fixed time: poll `check` until it holds, or fail at a deadline.
import assert from 'node:assert/strict';

export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A time (ISO 8601) after every event logged before the call and before every event logged after
 * it returns: the clock is watched moving on past both sides of it (event times are milliseconds).
 * For a cutoff (gc, compact, point in time, restore) between two steps of a test.
 */
export async function instantBetween(): Promise<string> {
  const next = async (after: number) => {
    while (Date.now() <= after) await new Promise((resolve) => setImmediate(resolve));
    return Date.now();
  };
  const at = await next(Date.now());
  await next(at);
  return new Date(at).toISOString();
}
