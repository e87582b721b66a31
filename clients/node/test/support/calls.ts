import assert from "node:assert/strict";

import { CivicscoreClient, CivicscoreError } from "../../src/index.js";
import type { ClientOptions } from "../../src/index.js";

/** The CivicscoreError a call rejects with; fails the test if it succeeds or rejects with anything else. */
export async function rejection(promise: Promise<unknown>): Promise<CivicscoreError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CivicscoreError, `expected a CivicscoreError, got ${String(error)}`);
    return error;
  }
  assert.fail("the call succeeded");
}

/** Run `use` with a client made from `options`, closed afterwards whatever happens. */
export async function withClient<T>(options: ClientOptions, use: (client: CivicscoreClient) => Promise<T>): Promise<T> {
  const client = new CivicscoreClient(options);
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

/**
 * The delays `setTimeout` is called with while `run` runs (every caller's, gRPC's own timers included).
 * Lets a test check the waits the client schedules without measuring time.
 */
export async function timeoutsDuring<T>(run: () => Promise<T>): Promise<{ result: T; delays: number[] }> {
  const delays: number[] = [];
  const original = globalThis.setTimeout;
  const recording = ((handler: (...args: unknown[]) => void, delay?: number, ...args: unknown[]) => {
    delays.push(delay ?? 0);
    return original(handler, delay, ...args);
  }) as typeof setTimeout;
  globalThis.setTimeout = recording;
  try {
    return { result: await run(), delays };
  } finally {
    globalThis.setTimeout = original;
  }
}
