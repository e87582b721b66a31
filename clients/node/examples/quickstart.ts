/**
 * Quickstart: two departments, their assignments for 2026-Q3 and what happened to them, then an
 * evaluation of the quarter and the recommendations it raised.
 *
 *   CIVICSCORE_ADDRESS=127.0.0.1:50051 CIVICSCORE_TOKEN=cs_... node dist/examples/quickstart.js
 *
 * In your own code import from "@civicscore/client" instead of "../src/index.js".
 */
import { CivicscoreClient, CivicscoreError, pb } from "../src/index.js";

const { Area } = pb.assignments;
const { OutcomeStatus, Quality } = pb.outcomes;
const { UnitKind } = pb.units;
const { RecommendationKind } = pb.evaluations;

const PERIOD = "2026-Q3";
const REPORTED_AT = new Date("2026-10-03T02:00:00Z");

async function main(): Promise<void> {
  const client = new CivicscoreClient({
    address: process.env["CIVICSCORE_ADDRESS"] ?? "127.0.0.1:50051",
    token: process.env["CIVICSCORE_TOKEN"] || undefined,
  });
  try {
    // Units: Vietnamese names travel as NFC UTF-8.
    const units = await client.units.upsertUnits({
      units: [
        { code: "SNV", displayNameVi: "Sở Nội vụ", displayNameEn: "Department of Home Affairs",
          kind: UnitKind.UNIT_KIND_DEPARTMENT, block: "departments", active: true },
        { code: "STP", displayNameVi: "Sở Tư pháp", displayNameEn: "Department of Justice",
          kind: UnitKind.UNIT_KIND_DEPARTMENT, block: "departments", active: true },
      ],
    });
    console.log(`units: created=${units.created} updated=${units.updated} unchanged=${units.unchanged}`);

    // Five assignments per department, due in July 2026.
    const assignments: pb.assignments.Assignment[] = [];
    const outcomes: pb.outcomes.Outcome[] = [];
    for (const unit of ["SNV", "STP"]) {
      for (let i = 0; i < 5; i++) {
        const id = `QS-${unit}-${i}`;
        const due = `2026-07-${String(10 + i).padStart(2, "0")}`;
        assignments.push(pb.assignments.Assignment.fromPartial({
          assignmentId: id, unit: `units/${unit}`, title: `Nhiệm vụ cải cách hành chính số ${i + 1}`,
          area: Area.AREA_PAR, sourceDocument: "818/QĐ-UBND", assignedOn: "2026-06-15", dueOn: due,
        }));
        // SNV finishes everything on time; STP leaves two tasks open after five reminders each.
        const open = unit === "STP" && i >= 3;
        outcomes.push(pb.outcomes.Outcome.fromPartial(open
          ? { outcomeId: `${id}-open`, assignment: `assignments/${id}`,
              status: OutcomeStatus.OUTCOME_STATUS_IN_PROGRESS, reminders: 5,
              reportedAt: REPORTED_AT, reportingSystem: "quickstart" }
          : { outcomeId: `${id}-done`, assignment: `assignments/${id}`,
              status: OutcomeStatus.OUTCOME_STATUS_COMPLETED, completedOn: `2026-07-0${5 + (i % 5)}`,
              quality: Quality.QUALITY_ACCEPTED, reportedAt: REPORTED_AT, reportingSystem: "quickstart" }));
      }
    }
    const upserted = await client.assignments.upsertAssignments({ assignments });
    console.log(`assignments: created=${upserted.created} updated=${upserted.updated} unchanged=${upserted.unchanged}`);

    // An idempotency key is filled in for us; a retried call resends it and gets the first reply.
    const submitted = await client.outcomes.submitOutcomes({ outcomes });
    console.log(`outcomes: accepted=${submitted.accepted} duplicates=${submitted.duplicates}`);

    const evaluated = await client.evaluations.evaluatePeriod({ period: `periods/${PERIOD}` });
    console.log(`evaluated: units=${evaluated.unitsEvaluated} ruleset=${evaluated.rulesetVersion} ` +
      `recommendations=${evaluated.recommendations}`);

    const { recommendations } = await client.evaluations.listRecommendations({ parent: `periods/${PERIOD}` });
    for (const r of recommendations) {
      const kind = r.kind === RecommendationKind.RECOMMENDATION_KIND_COMMENDATION ? "commendation" : "criticism";
      console.log(`recommendation: ${r.unit} ${r.flag} ${kind} "${r.labelVi}" (${r.unitDisplayNameVi})`);
      for (const reason of r.reasons) {
        console.log(`  - ${reason.textVi}`);
      }
    }
  } finally {
    client.close();
  }
}

main().catch((error: unknown) => {
  if (error instanceof CivicscoreError) {
    console.error(`failed: ${error.message}`);
    for (const v of error.fieldViolations) {
      console.error(`  ${v.field}: ${v.description}`);
    }
  } else {
    console.error(error);
  }
  process.exitCode = 1;
});
