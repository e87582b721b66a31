/** Calls against the real server: Unicode, writes and reads, rich errors, access, streams. */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { inspect } from "node:util";

import { CivicscoreClient, CredentialsError, pb, status } from "../src/index.js";
import { rejection, withClient } from "./support/calls.js";
import { ServerProcess } from "./support/server.js";

const { UnitKind } = pb.units;
const { Area } = pb.assignments;
const { OutcomeStatus, Quality } = pb.outcomes;
const { Role } = pb.identities;

const PERIOD = "2026-Q3";
const REPORTED_AT = new Date("2026-10-03T02:00:00Z");

function unit(code: string, vi: string, en: string): pb.units.Unit {
  return pb.units.Unit.fromPartial({
    code, displayNameVi: vi, displayNameEn: en, kind: UnitKind.UNIT_KIND_DEPARTMENT, block: "departments", active: true,
  });
}

function assignment(id: string, unitCode: string, due: string): pb.assignments.Assignment {
  return pb.assignments.Assignment.fromPartial({
    assignmentId: id, unit: `units/${unitCode}`, title: `Nhiệm vụ ${id}`, area: Area.AREA_PAR,
    sourceDocument: "818/QĐ-UBND", assignedOn: "2026-06-15", dueOn: due,
  });
}

function completed(id: string, on: string): pb.outcomes.Outcome {
  return pb.outcomes.Outcome.fromPartial({
    outcomeId: `${id}-done`, assignment: `assignments/${id}`, status: OutcomeStatus.OUTCOME_STATUS_COMPLETED,
    completedOn: on, quality: Quality.QUALITY_ACCEPTED, reportedAt: REPORTED_AT, reportingSystem: "node-tests",
  });
}

describe("civicscore API", () => {
  let server: ServerProcess;
  let admin: CivicscoreClient;

  before(async () => {
    server = await ServerProcess.start();
    admin = new CivicscoreClient({ address: server.address, token: server.token });
  });

  after(async () => {
    admin?.close();
    await server?.stop();
  });

  it("round-trips a Vietnamese unit name byte for byte (NFC UTF-8)", async () => {
    const names = ["Sở Nội vụ", "Ủy ban nhân dân phường Hoàn Kiếm", "Sở Văn hóa và Thể thao"];
    for (const name of names) {
      assert.equal(name, name.normalize("NFC"));
    }
    const reply = await admin.units.upsertUnits({
      units: names.map((vi, i) => unit(`VI-${i}`, vi, `Unit ${i}`)),
    });
    assert.equal(reply.created, names.length);
    for (const [i, name] of names.entries()) {
      const { unit: stored } = await admin.units.getUnit({ name: `units/VI-${i}` });
      assert.ok(stored);
      assert.equal(stored.displayNameVi, name);
      assert.deepEqual(Buffer.from(stored.displayNameVi, "utf8"), Buffer.from(name, "utf8"));
      assert.equal(stored.displayNameVi, stored.displayNameVi.normalize("NFC"));
    }
    const listed = await admin.units.listUnits({ filter: "block=departments" });
    const byCode = new Map(listed.units.map((u) => [u.code, u.displayNameVi]));
    assert.deepEqual(Buffer.from(byCode.get("VI-0") ?? "", "utf8"), Buffer.from("Sở Nội vụ", "utf8"));
  });

  it("submits outcomes, evaluates the quarter and lists the recommendations", async () => {
    await admin.units.upsertUnits({ units: [unit("SNV", "Sở Nội vụ", "Department of Home Affairs")] });
    const ids = [0, 1, 2, 3, 4, 5].map((i) => `EV-SNV-${i}`);
    await admin.assignments.upsertAssignments({
      assignments: ids.map((id, i) => assignment(id, "SNV", `2026-08-${10 + i}`)),
    });
    const submitted = await admin.outcomes.submitOutcomes({
      outcomes: ids.map((id, i) => completed(id, `2026-08-0${1 + i}`)),
    });
    assert.deepEqual([submitted.accepted, submitted.duplicates], [ids.length, 0]);

    const evaluated = await admin.evaluations.evaluatePeriod({ period: `periods/${PERIOD}` });
    assert.ok(evaluated.unitsEvaluated >= 1);
    assert.match(evaluated.rulesetDigest, /^[0-9a-f]{64}$/);

    const { evaluation } = await admin.evaluations.getEvaluation({ name: `periods/${PERIOD}/evaluations/SNV` });
    assert.ok(evaluation?.assessable);
    assert.equal(evaluation.counts?.due, ids.length);
    assert.equal(evaluation.counts?.onTime, ids.length);
    assert.ok(evaluation.createTime instanceof Date);

    const { recommendations } = await admin.evaluations.listRecommendations({
      parent: `periods/${PERIOD}`, filter: "unit=units/SNV",
    });
    const praise = recommendations.find((r) => r.flag === "praise");
    assert.ok(praise, `no praise among ${recommendations.map((r) => r.flag).join(", ")}`);
    assert.equal(praise.kind, pb.evaluations.RecommendationKind.RECOMMENDATION_KIND_COMMENDATION);
    assert.equal(praise.unitDisplayNameVi, "Sở Nội vụ");
    assert.ok(praise.reasons.length > 0 && praise.reasons.every((r) => r.textVi !== "" && r.textEn !== ""));
  });

  it("refuses an invalid batch with INVALID_ARGUMENT, decoded field violations, and stores nothing", async () => {
    await admin.units.upsertUnits({ units: [unit("BAD", "Sở Thử nghiệm", "Test department")] });
    await admin.assignments.upsertAssignments({ assignments: [assignment("BAD-0", "BAD", "2026-08-10")] });
    const good = completed("BAD-0", "2026-08-01");
    const bad = pb.outcomes.Outcome.fromPartial({
      outcomeId: "BAD-1-x", assignment: "assignments/NO-SUCH", reportedAt: REPORTED_AT, reportingSystem: "node-tests",
    }); // no status, unknown assignment
    const error = await rejection(admin.outcomes.submitOutcomes({ outcomes: [good, good, bad] }));
    assert.equal(error.code, status.INVALID_ARGUMENT);
    assert.equal(error.codeName, "INVALID_ARGUMENT");
    assert.ok(error.fromServer);
    assert.ok(error.badRequest, "BadRequest detail decoded");
    const fields = error.fieldViolations.map((v) => v.field);
    assert.ok(fields.length > 0);
    assert.ok(fields.every((f) => /^outcomes\[\d+\]\.\w+/.test(f)), fields.join(", "));
    assert.ok(fields.includes("outcomes[2].status"), fields.join(", "));
    assert.ok(fields.some((f) => f.startsWith("outcomes[2].assignment")), fields.join(", "));
    assert.ok(error.fieldViolations.every((v) => v.description !== ""));
    assert.ok(error.message.startsWith("INVALID_ARGUMENT: "));

    const stored = await admin.outcomes.listOutcomes({ filter: "unit=units/BAD" });
    assert.deepEqual(stored.outcomes, [], "nothing of the refused batch was stored");
  });

  it("asks for an extension, approves it, and refuses deciding it twice", async () => {
    const { ExtensionStatus, ExtensionDecision } = pb.extensions;
    await admin.units.upsertUnits({ units: [unit("EXT", "Sở Gia hạn", "Extension department")] });
    // due far ahead of the server's clock: a request must come before the due date in force
    await admin.assignments.upsertAssignments({ assignments: [assignment("EXT-0", "EXT", "2099-12-31")] });
    const asked = await admin.extensions.requestExtension({
      assignment: "assignments/EXT-0", dueOn: "2100-06-30", reason: "Chờ ý kiến thẩm định", idempotencyKey: "node-ext-1",
    });
    const name = asked.extension?.name ?? "";
    assert.match(name, /^assignments\/EXT-0\/extensions\/\d+$/);
    assert.equal(asked.extension?.status, ExtensionStatus.EXTENSION_STATUS_PENDING);
    assert.equal(asked.extension?.dueOnAtRequest, "2099-12-31");
    const again = await admin.extensions.requestExtension({
      assignment: "assignments/EXT-0", dueOn: "2100-06-30", reason: "Chờ ý kiến thẩm định", idempotencyKey: "node-ext-1",
    });
    assert.equal(again.extension?.name, name, "a retry with the same key is answered with the first reply");

    const decided = await admin.extensions.decideExtension({
      name, decision: ExtensionDecision.EXTENSION_DECISION_APPROVE, reason: "Đồng ý",
    });
    assert.equal(decided.extension?.status, ExtensionStatus.EXTENSION_STATUS_APPROVED);
    assert.equal(decided.extension?.effectiveDueOn, "2100-06-30");
    assert.ok(decided.extension?.decisionTime instanceof Date);
    const { extension } = await admin.extensions.getExtension({ name });
    assert.equal(extension?.decisionReason, "Đồng ý");
    const listed = await admin.extensions.listExtensions({ parent: "assignments/EXT-0", filter: "status=approved" });
    assert.deepEqual(listed.extensions.map((e) => e.name), [name]);

    const twice = await rejection(admin.extensions.decideExtension({
      name, decision: ExtensionDecision.EXTENSION_DECISION_REFUSE, reason: "Đổi ý",
    }));
    assert.equal(twice.code, status.FAILED_PRECONDITION);
    assert.match(twice.message, /is APPROVED \(final\); it cannot be refused/);
    const earlier = await rejection(admin.extensions.requestExtension({
      assignment: "assignments/EXT-0", dueOn: "2100-01-15", reason: "Sớm hơn hạn đang áp dụng",
    }));
    assert.equal(earlier.code, status.INVALID_ARGUMENT);
    assert.deepEqual(earlier.fieldViolations.map((v) => v.field), ["due_on"]);
  });

  it("reports an obstacle, lists it by status and age, resolves it and refuses resolving it twice", async () => {
    const { ObstacleStatus } = pb.obstacles;
    await admin.units.upsertUnits({ units: [unit("OBS", "Sở Vướng mắc", "Obstacle department")] });
    await admin.assignments.upsertAssignments({ assignments: [assignment("OBS-0", "OBS", "2099-12-31")] });
    const reported = await admin.obstacles.reportObstacle({
      assignment: "assignments/OBS-0", description: "Chưa có hướng dẫn", request: "Đề nghị hướng dẫn",
      requestedOf: "Sở Tài chính", idempotencyKey: "node-obs-1",
    });
    const name = reported.obstacle?.name ?? "";
    assert.match(name, /^assignments\/OBS-0\/obstacles\/\d+$/);
    assert.equal(reported.obstacle?.status, ObstacleStatus.OBSTACLE_STATUS_OPEN);
    assert.equal(reported.obstacle?.daysOpen, 0);
    assert.ok(reported.obstacle?.reportTime instanceof Date);
    const { obstacle } = await admin.obstacles.getObstacle({ name });
    assert.equal(obstacle?.requestedOf, "Sở Tài chính");
    const listed = await admin.obstacles.listObstacles({ filter: "unit=units/OBS AND status=unresolved AND age<1" });
    assert.deepEqual(listed.obstacles.map((o) => o.name), [name]);
    const old = await admin.obstacles.listObstacles({ filter: "unit=units/OBS AND age>30" });
    assert.deepEqual(old.obstacles, []);

    const resolved = await admin.obstacles.resolveObstacle({ name, resolution: "Đã xử lý" });
    assert.equal(resolved.obstacle?.status, ObstacleStatus.OBSTACLE_STATUS_RESOLVED);
    const twice = await rejection(admin.obstacles.resolveObstacle({ name, resolution: "Lại" }));
    assert.equal(twice.code, status.FAILED_PRECONDITION);
    assert.match(twice.message, /is RESOLVED on \d{4}-\d{2}-\d{2} \(final\); it cannot be resolved again/);
  });

  it("upserts an official, reads them back with their diacritics intact, and refuses a reader (personal.read)",
    async () => {
      const { OfficialPosition, OfficialActivity } = pb.officials;
      await admin.units.upsertUnits({ units: [unit("OFC", "Sở Công Thương", "Department of Industry and Trade")] });
      const name = "Nguyễn Thị Ngọc Ánh";
      assert.equal(name, name.normalize("NFC"));
      const decomposed = "Trần Văn Đức".normalize("NFD"); // as some personnel systems send it
      assert.notEqual(decomposed, decomposed.normalize("NFC"));
      const upserted = await admin.officials.upsertOfficials({
        officials: [
          {
            officialId: "CB-NODE-1", displayName: name,
            appointments: [
              { unit: "units/OFC", position: OfficialPosition.OFFICIAL_POSITION_DEPUTY, startOn: "2023-01-01",
                endOn: "2025-12-31" },
              { unit: "units/OFC", position: OfficialPosition.OFFICIAL_POSITION_HEAD, startOn: "2026-01-01" },
            ],
          },
          {
            officialId: "CB-NODE-2", displayName: decomposed,
            appointments: [{ unit: "units/OFC", position: OfficialPosition.OFFICIAL_POSITION_OFFICER, startOn: "2024-03-01" }],
          },
        ],
        idempotencyKey: "node-officials-1",
      });
      assert.deepEqual([upserted.created, upserted.updated, upserted.unchanged], [2, 0, 0]);

      const { official } = await admin.officials.getOfficial({ name: "officials/CB-NODE-1" });
      assert.ok(official);
      assert.equal(official.name, "officials/CB-NODE-1");
      assert.deepEqual(Buffer.from(official.displayName, "utf8"), Buffer.from(name, "utf8"));
      assert.equal(official.activity, OfficialActivity.OFFICIAL_ACTIVITY_ACTIVE);
      assert.deepEqual(
        official.appointments.map((a) => [a.unit, a.position, a.startOn, a.endOn]),
        [["units/OFC", OfficialPosition.OFFICIAL_POSITION_DEPUTY, "2023-01-01", "2025-12-31"],
          ["units/OFC", OfficialPosition.OFFICIAL_POSITION_HEAD, "2026-01-01", ""]],
      );
      const listed = await admin.officials.listOfficials({ filter: "unit=units/OFC" });
      const byId = new Map(listed.officials.map((o) => [o.officialId, o.displayName]));
      assert.deepEqual([...byId.keys()], ["CB-NODE-1", "CB-NODE-2"]);
      const stored = byId.get("CB-NODE-2") ?? "";
      assert.equal(stored, "Trần Văn Đức".normalize("NFC"), "the server stores names in NFC");
      assert.deepEqual(Buffer.from(stored, "utf8"), Buffer.from("Trần Văn Đức".normalize("NFC"), "utf8"));

      await admin.identities.createIdentity({
        identity: { identityId: "node-officials-reader", displayName: "Người đọc cá nhân", roles: [Role.ROLE_READER] },
      });
      const issued = await admin.identities.issueToken({ identity: "identities/node-officials-reader", validDays: 1 });
      await withClient({ address: server.address, token: issued.token }, async (reader) => {
        // One call at a time: a second call made before the first is awaited would reject unhandled.
        for (const call of [
          () => reader.officials.getOfficial({ name: "officials/CB-NODE-1" }),
          () => reader.officials.listOfficials({}),
        ]) {
          const error = await rejection(call());
          assert.equal(error.code, status.PERMISSION_DENIED);
          assert.equal(error.errorInfo?.reason, "PERMISSION_MISSING");
          assert.equal(error.errorInfo?.metadata["permission"], "personal.read", "the missing permission is named");
          assert.match(error.message, /personal\.read/);
          assert.ok(!error.message.includes(name), "no personal data in the refusal");
        }
      });
    });

  it("refuses a call without a token with UNAUTHENTICATED", async () => {
    const error = await withClient({ address: server.address }, (anonymous) => rejection(anonymous.units.listUnits({})));
    assert.equal(error.code, status.UNAUTHENTICATED);
    assert.equal(error.codeName, "UNAUTHENTICATED");
    assert.equal(error.attempts, 1, "UNAUTHENTICATED is not retried");
    assert.equal(error.errorInfo?.reason, "UNAUTHENTICATED");
  });

  it("refuses a write by a reader with PERMISSION_DENIED and ErrorInfo, never showing the token", async () => {
    const created = await admin.identities.createIdentity({
      identity: { identityId: "node-reader", displayName: "Người đọc thử", roles: [Role.ROLE_READER] },
    });
    assert.equal(created.identity?.name, "identities/node-reader");
    const issued = await admin.identities.issueToken({ identity: "identities/node-reader", validDays: 1 });
    assert.ok(issued.token.length > 20);

    await withClient({ address: server.address, token: issued.token }, async (reader) => {
      const me = await reader.identities.whoAmI({});
      assert.equal(me.identity?.identityId, "node-reader");
      await reader.units.listUnits({}); // reading is allowed

      const error = await rejection(
        reader.units.upsertUnits({ units: [unit("RDR", "Sở Đọc", "Reader department")] }),
      );
      assert.equal(error.code, status.PERMISSION_DENIED);
      assert.equal(error.errorInfo?.reason, "PERMISSION_MISSING");
      assert.equal(error.errorInfo?.domain, "civicscore.hanoi.gov.vn");
      assert.equal(error.errorInfo?.metadata["permission"], "units.write", "the missing permission is named");
      for (const shown of [error.message, String(error), inspect(error), JSON.stringify(error), error.stack ?? "",
        String(reader), inspect(reader), JSON.stringify(reader)]) {
        assert.ok(!shown.includes(issued.token), "the token never appears");
      }
    });
  });

  it("refuses to send a token in plaintext to a remote address, without showing it", () => {
    const token = "cs_0123456789ab_secretsecretsecretsecretsecretsecretsecret1";
    assert.throws(
      () => new CivicscoreClient({ address: "civicscore.example.org:443", token }),
      (error: unknown) => error instanceof CredentialsError && !error.message.includes(token) &&
        error.message.includes("plaintext"),
    );
    assert.throws(() => new CivicscoreClient({ address: "127.0.0.1:1", token: "Bearer x" }), CredentialsError);
    assert.throws(() => new CivicscoreClient({ address: "127.0.0.1:1", clientCert: "/nonexistent.pem" }),
      CredentialsError);
    new CivicscoreClient({ address: "localhost:1", token }).close();
    new CivicscoreClient({ address: "[::1]:1", token }).close();
  });

  it("streams outcomes (client stream, committed with its own key) and watches recommendations", async () => {
    await admin.units.upsertUnits({ units: [unit("STR", "Sở Truyền dữ liệu", "Streaming department")] });
    const ids = ["STR-0", "STR-1", "STR-2"];
    await admin.assignments.upsertAssignments({ assignments: ids.map((id) => assignment(id, "STR", "2026-08-10")) });
    async function* requests(): AsyncGenerator<pb.outcomes.StreamOutcomesRequest> {
      yield { item: { $case: "chunk", chunk: { outcomes: ids.slice(0, 2).map((id) => completed(id, "2026-08-01")) } } };
      yield { item: { $case: "chunk", chunk: { outcomes: [completed("STR-2", "2026-08-02")] } } };
      yield { item: { $case: "commit", commit: { outcomeCount: 3, idempotencyKey: "node-stream-1" } } };
    }
    const reply = await admin.outcomes.streamOutcomes(requests());
    assert.deepEqual([reply.accepted, reply.duplicates], [3, 0]);

    // A stream without its commit marker stores nothing.
    const broken = await rejection(admin.outcomes.streamOutcomes([
      { item: { $case: "chunk", chunk: { outcomes: [completed("STR-0", "2026-08-03")] } } },
    ]));
    assert.notEqual(broken.code, status.OK);

    await admin.evaluations.evaluatePeriod({ period: `periods/${PERIOD}` });
    const seen: string[] = [];
    const watch = admin.reviews.watchRecommendations({ cursor: "" }, { deadlineMs: 10_000 });
    for await (const message of watch) {
      if (message.change?.recommendation) {
        seen.push(message.change.recommendation.name);
      }
      if (message.caughtUp) {
        break; // leaving the loop cancels the call
      }
    }
    assert.ok(seen.length > 0, "the backlog holds the raised recommendations");
  });
});
