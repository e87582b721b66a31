/**
 * The generated message types and enums, one namespace per proto file, e.g.
 * `pb.outcomes.Outcome`, `pb.outcomes.OutcomeStatus.OUTCOME_STATUS_COMPLETED`.
 * Also the grpc-js service definitions (`pb.outcomes.OutcomeServiceService`) and raw clients
 * (`pb.outcomes.OutcomeServiceClient`) for those who want grpc-js without this wrapper.
 */
export * as assignments from "./gen/civicscore/v1/assignments.js";
export * as audit from "./gen/civicscore/v1/audit.js";
export * as common from "./gen/civicscore/v1/common.js";
export * as evaluations from "./gen/civicscore/v1/evaluations.js";
export * as extensions from "./gen/civicscore/v1/extensions.js";
export * as identities from "./gen/civicscore/v1/identities.js";
export * as measurements from "./gen/civicscore/v1/measurements.js";
export * as obstacles from "./gen/civicscore/v1/obstacles.js";
export * as officials from "./gen/civicscore/v1/officials.js";
export * as outcomes from "./gen/civicscore/v1/outcomes.js";
export * as periods from "./gen/civicscore/v1/periods.js";
export * as reports from "./gen/civicscore/v1/reports.js";
export * as reviews from "./gen/civicscore/v1/reviews.js";
export * as rulesets from "./gen/civicscore/v1/rulesets.js";
export * as units from "./gen/civicscore/v1/units.js";
export * as rpcStatus from "./gen/google/rpc/status.js";
export * as rpcErrorDetails from "./gen/google/rpc/error_details.js";
