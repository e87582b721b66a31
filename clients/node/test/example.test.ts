/** Runs examples/quickstart against the real server, so the example cannot rot. */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";

import { PACKAGE_ROOT, ServerProcess } from "./support/server.js";

const run = promisify(execFile);
const QUICKSTART = join(PACKAGE_ROOT, "dist", "examples", "quickstart.js");

describe("examples/quickstart", () => {
  let server: ServerProcess;

  before(async () => {
    server = await ServerProcess.start();
  });

  after(async () => {
    await server?.stop();
  });

  async function quickstart(): Promise<string[]> {
    const { stdout } = await run(process.execPath, [QUICKSTART], {
      env: { ...process.env, CIVICSCORE_ADDRESS: server.address, CIVICSCORE_TOKEN: server.token },
      timeout: 30_000,
    });
    return stdout.split("\n");
  }

  it("loads data, evaluates the quarter and prints the recommendations", async () => {
    const lines = await quickstart();
    assert.ok(lines.includes("units: created=2 updated=0 unchanged=0"), lines.join("\n"));
    assert.ok(lines.includes("assignments: created=10 updated=0 unchanged=0"), lines.join("\n"));
    assert.ok(lines.includes("outcomes: accepted=10 duplicates=0"), lines.join("\n"));
    assert.ok(lines.some((l) => /^evaluated: units=2 ruleset=\S+ recommendations=3$/.test(l)), lines.join("\n"));
    const recommendations = lines.filter((l) => l.startsWith("recommendation: "));
    assert.deepEqual(recommendations, [
      'recommendation: units/SNV praise commendation "Biểu dương" (Sở Nội vụ)',
      'recommendation: units/STP reminder criticism "Nhắc nhở" (Sở Tư pháp)',
      'recommendation: units/STP criticism criticism "Phê bình" (Sở Tư pháp)',
    ]);
    assert.ok(lines.some((l) => l.includes("Nhiệm vụ QS-STP-3 quá hạn đã bị đôn đốc 5 lần")), lines.join("\n"));
  });

  it("is safe to run again: the same outcomes are duplicates, nothing changes", async () => {
    const lines = await quickstart();
    assert.ok(lines.includes("units: created=0 updated=0 unchanged=2"), lines.join("\n"));
    assert.ok(lines.includes("outcomes: accepted=0 duplicates=10"), lines.join("\n"));
    assert.equal(lines.filter((l) => l.startsWith("recommendation: ")).length, 3);
  });
});
