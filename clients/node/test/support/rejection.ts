import assert from "node:assert/strict";

import { CivicscoreError } from "../../src/index.js";

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
