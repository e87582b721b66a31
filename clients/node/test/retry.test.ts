/** Deadlines, retries of UNAVAILABLE with backoff, and the same idempotency key on every retry. */
import assert from "node:assert/strict";
import { createServer } from "node:net";
import type { Server, Socket } from "node:net";
import { after, before, describe, it } from "node:test";

import { CivicscoreClient, pb, status } from "../src/index.js";
import { CuttingProxy } from "./support/proxy.js";
import { rejection, timeoutsDuring, withClient } from "./support/calls.js";
import { ServerProcess } from "./support/server.js";

const REPORTED_AT = new Date("2026-10-03T02:00:00Z");

/** A TCP server on loopback that accepts connections and never answers. */
async function blackHole(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  assert.ok(address !== null && typeof address !== "string");
  return { server, port: address.port, sockets };
}

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const { server, port } = await blackHole();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function outcomes(prefix: string, count: number): pb.outcomes.Outcome[] {
  return Array.from({ length: count }, (_, i) =>
    pb.outcomes.Outcome.fromPartial({
      outcomeId: `${prefix}-${i}`, assignment: `assignments/RT-${i}`,
      status: pb.outcomes.OutcomeStatus.OUTCOME_STATUS_COMPLETED, completedOn: "2026-08-01",
      quality: pb.outcomes.Quality.QUALITY_ACCEPTED, reportedAt: REPORTED_AT, reportingSystem: "node-tests",
    }));
}

describe("deadlines and retries", () => {
  let server: ServerProcess;
  let admin: CivicscoreClient;
  const N = 4;

  before(async () => {
    server = await ServerProcess.start();
    admin = new CivicscoreClient({ address: server.address, token: server.token });
    await admin.units.upsertUnits({
      units: [{ code: "RT", displayNameVi: "Sở Thử lại", displayNameEn: "Retry department",
        kind: pb.units.UnitKind.UNIT_KIND_DEPARTMENT, block: "departments", active: true }],
    });
    await admin.assignments.upsertAssignments({
      assignments: Array.from({ length: N }, (_, i) => ({
        assignmentId: `RT-${i}`, unit: "units/RT", title: `Nhiệm vụ thử lại ${i}`, area: pb.assignments.Area.AREA_PAR,
        assignedOn: "2026-06-15", dueOn: "2026-08-10",
      })),
    });
  });

  after(async () => {
    admin?.close();
    await server?.stop();
  });

  it("gives DEADLINE_EXCEEDED, not retried, when a call outlasts its deadline", async () => {
    const error = await rejection(admin.evaluations.evaluatePeriod({ period: "periods/2026-Q3" }, { deadlineMs: 1 }));
    assert.equal(error.code, status.DEADLINE_EXCEEDED);
    assert.equal(error.codeName, "DEADLINE_EXCEEDED");
    assert.equal(error.attempts, 1);
  });

  it("puts the client's default deadline on every call", async () => {
    const hole = await blackHole(); // accepts TCP, never speaks HTTP/2: only a deadline ends the call
    try {
      // No deadline is given with the call: only the client's default can end it (else the test times out).
      const error = await withClient({ address: `127.0.0.1:${hole.port}`, deadlineMs: 300 },
        (client) => rejection(client.units.listUnits({})));
      assert.equal(error.code, status.DEADLINE_EXCEEDED);
      assert.equal(error.attempts, 1, "DEADLINE_EXCEEDED is not retried");
      assert.ok(hole.sockets.size >= 1, "the client did connect");
    } finally {
      for (const socket of hole.sockets) {
        socket.destroy();
      }
      hole.server.close();
    }
  });

  it("retries UNAVAILABLE maxAttempts times with exponential backoff, then fails", async () => {
    const port = await closedPort();
    const random = Math.random;
    Math.random = () => 0.5; // the middle of each full-jitter range: waits of 30, 50 (bound capped), 50 ms
    try {
      const { result: error, delays } = await timeoutsDuring(() => withClient(
        { address: `127.0.0.1:${port}`, maxAttempts: 4, initialBackoffMs: 60, maxBackoffMs: 100, deadlineMs: 2_000 },
        (client) => rejection(client.units.listUnits({}))));
      assert.equal(error.code, status.UNAVAILABLE);
      assert.equal(error.attempts, 4);
      assert.equal(error.fromServer, false);
      // The backoff waits, in order, among gRPC's own timers: the bound doubles from 60 and is capped at 100.
      const waits = delays.filter((delay) => delay === 30 || delay === 50);
      assert.deepEqual(waits, [30, 50, 50], `setTimeout delays: ${delays.join(", ")}`);
    } finally {
      Math.random = random;
    }
  });

  it("retries a write cut after commit with the same idempotency key and gets the first reply", async () => {
    const proxy = await new CuttingProxy(server.port).listen();
    try {
      proxy.armed = true;
      const reply = await withClient({ address: proxy.address, token: server.token, initialBackoffMs: 20 },
        (client) => client.outcomes.submitOutcomes({ outcomes: outcomes("KEY", N) }));
      assert.equal(proxy.cuts, 1, "the first reply was cut");
      assert.equal(proxy.connections, 2, "the retry came on a new connection");
      // The first attempt's reply: a retry with a fresh key would get accepted=0, duplicates=N.
      assert.deepEqual([reply.accepted, reply.duplicates], [N, 0]);

      const stored = await admin.outcomes.listOutcomes({ filter: "unit=units/RT", pageSize: 1000 });
      const ids = stored.outcomes.map((o) => o.outcomeId).sort();
      assert.deepEqual(ids, outcomes("KEY", N).map((o) => o.outcomeId).sort(), "one stored copy of each");

      // What a retry without the key would have seen: the server counts them as duplicates.
      const again = await admin.outcomes.submitOutcomes({ outcomes: outcomes("KEY", N) });
      assert.deepEqual([again.accepted, again.duplicates], [0, N]);
    } finally {
      await proxy.close();
    }
  });

  it("without retries, a write cut after commit fails with UNAVAILABLE although it was stored", async () => {
    const proxy = await new CuttingProxy(server.port).listen();
    try {
      proxy.armed = true;
      const error = await withClient({ address: proxy.address, token: server.token, maxAttempts: 1 },
        (client) => rejection(client.outcomes.submitOutcomes({ outcomes: outcomes("ONCE", N) })));
      assert.equal(error.code, status.UNAVAILABLE);
      assert.equal(error.attempts, 1);
      assert.equal(proxy.cuts, 1);
      assert.equal(proxy.connections, 1, "grpc-js did not retry on its own");
      const stored = await admin.outcomes.listOutcomes({ filter: "unit=units/RT", pageSize: 1000 });
      assert.equal(stored.outcomes.filter((o) => o.outcomeId.startsWith("ONCE-")).length, N);
    } finally {
      await proxy.close();
    }
  });
});
