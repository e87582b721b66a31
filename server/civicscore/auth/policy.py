"""Who may call what: roles, the permissions they grant, and the one table of RPCs.

Every RPC the server offers must be in METHOD_ACCESS; one that is not is refused
for everyone (new RPCs are closed until someone decides who may call them). A test
checks that every RPC of every civicscore service is in the table.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    REPORTER = "reporter"  # submits outcomes and measurements, asks for extensions, for the units in its scope
    READER = "reader"  # reads everything
    POLICY = "policy"  # rulesets: check, simulate, activate, roll back; targets
    COMMITTEE = "committee"  # assigns tasks, runs evaluations, reviews recommendations, decides extensions
    ADMIN = "admin"  # identities, credentials and units


class Permission(StrEnum):
    READ = "read"
    SUBMIT = "submit"  # outcomes and measurements, within the caller's unit scope
    ASSIGN = "assignments.write"
    UNITS = "units.write"
    TARGETS = "targets.write"
    EVALUATE = "evaluations.run"
    RULES_CHECK = "rules.check"  # check and simulate: nothing changes
    RULES_ACTIVATE = "rules.activate"  # activate and roll back
    IDENTITIES = "identities.manage"
    REVIEW = "recommendations.review"  # approve, reject, defer
    CONTEST = "recommendations.contest"  # a unit's right of reply, within the caller's unit scope
    AUDIT = "audit.read"  # list and verify the audit log
    DATA_CHECK = "data.check"  # check stored data against the field domains
    EXTENSION_REQUEST = "extensions.request"  # ask for more time on an assignment, within the caller's unit scope
    EXTENSION_DECIDE = "extensions.decide"  # approve or refuse an extension request
    OBSTACLE_REPORT = "obstacles.report"  # report an obstacle on an assignment, within the caller's unit scope
    OBSTACLE_RESOLVE = "obstacles.resolve"  # name who resolves an obstacle, and close it with a resolution
    OFFICIALS = "officials.write"  # create, replace, deactivate and delete officials
    # Officials, their results and the recommendations about them (personal data; every read is audited):
    # committee and admin for everyone, a reporter for the officials of the units in its scope.
    PERSONAL = "personal.read"


class Access(StrEnum):
    OPEN = "open"  # no credentials needed (health checks)
    AUTHENTICATED = "authenticated"  # any valid identity (e.g. WhoAmI)


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.REPORTER: frozenset({Permission.SUBMIT, Permission.CONTEST, Permission.EXTENSION_REQUEST,
                              Permission.OBSTACLE_REPORT, Permission.PERSONAL}),
    Role.READER: frozenset({Permission.READ}),
    Role.POLICY: frozenset({Permission.READ, Permission.RULES_CHECK, Permission.RULES_ACTIVATE, Permission.TARGETS}),
    Role.COMMITTEE: frozenset({Permission.READ, Permission.ASSIGN, Permission.EVALUATE, Permission.REVIEW,
                               Permission.AUDIT, Permission.EXTENSION_REQUEST, Permission.EXTENSION_DECIDE,
                               Permission.OBSTACLE_REPORT, Permission.OBSTACLE_RESOLVE, Permission.PERSONAL}),
    Role.ADMIN: frozenset({Permission.READ, Permission.UNITS, Permission.IDENTITIES, Permission.AUDIT,
                           Permission.DATA_CHECK, Permission.EXTENSION_REQUEST, Permission.OBSTACLE_REPORT,
                           Permission.OFFICIALS, Permission.PERSONAL}),
}
# Roles that act for every unit where a permission is otherwise bounded by the caller's unit scope
# (an extension request: a reporter for its own units, the committee office and administrators for any).
CITY_WIDE_ROLES = frozenset({Role.COMMITTEE.value, Role.ADMIN.value})

ROLE_VALUES = frozenset(role.value for role in Role)
ALL_UNITS = "*"  # a reporter scope that covers every unit (e.g. the city's own task tracker)


def permissions_of(roles: frozenset[str] | tuple[str, ...]) -> frozenset[Permission]:
    """Everything the roles grant together (unknown role names grant nothing)."""
    granted: set[Permission] = set()
    for role in roles:
        if role in ROLE_VALUES:
            granted |= ROLE_PERMISSIONS[Role(role)]
    return frozenset(granted)


def _service(name: str, methods: dict[str, Permission | Access]) -> dict[str, Permission | Access]:
    return {f"/{name}/{method}": access for method, access in methods.items()}


P, A = Permission, Access
METHOD_ACCESS: dict[str, Permission | Access] = {
    **_service("grpc.health.v1.Health", {"Check": A.OPEN, "Watch": A.OPEN}),
    **_service("civicscore.v1.UnitService", {"UpsertUnits": P.UNITS, "GetUnit": P.READ, "ListUnits": P.READ}),
    **_service("civicscore.v1.AssignmentService", {
        "UpsertAssignments": P.ASSIGN, "GetAssignment": P.READ, "ListAssignments": P.READ}),
    **_service("civicscore.v1.OutcomeService", {
        "SubmitOutcomes": P.SUBMIT, "StreamOutcomes": P.SUBMIT, "ListOutcomes": P.READ}),
    **_service("civicscore.v1.MeasurementService", {
        "SubmitMeasurements": P.SUBMIT, "ListMeasurements": P.READ, "UpsertTargets": P.TARGETS,
        "ListTargets": P.READ}),
    **_service("civicscore.v1.PeriodService", {"GetPeriod": P.READ, "ListPeriods": P.READ}),
    **_service("civicscore.v1.EvaluationService", {
        "EvaluatePeriod": P.EVALUATE, "GetEvaluation": P.READ, "ListEvaluations": P.READ, "ListRankings": P.READ,
        "ListRecommendations": P.READ, "ExplainEvaluation": P.READ}),
    **_service("civicscore.v1.RulesetService", {
        "GetActiveRuleset": P.READ, "GetRuleset": P.READ, "ListRulesetActivations": P.READ,
        "GetRulesetStatus": P.READ, "CheckRuleset": P.RULES_CHECK, "SimulateRuleset": P.RULES_CHECK,
        "ActivateRuleset": P.RULES_ACTIVATE, "RollbackRuleset": P.RULES_ACTIVATE}),
    **_service("civicscore.v1.IdentityService", {
        "CreateIdentity": P.IDENTITIES, "IssueToken": P.IDENTITIES, "RegisterCertificate": P.IDENTITIES,
        "ListIdentities": P.IDENTITIES, "ListCredentials": P.IDENTITIES, "RevokeCredential": P.IDENTITIES,
        "RevokeIdentity": P.IDENTITIES, "WhoAmI": A.AUTHENTICATED,
        # Anyone signed in may change its own password; setting another's needs IDENTITIES (checked by the use case).
        "SetPassword": A.AUTHENTICATED,
        # The one civicscore RPC open without credentials: it is how a person gets them (throttled per identity).
        "SignIn": A.OPEN,
        # Anyone signed in may end its own session (the call's credential; the use case refuses other kinds).
        "SignOut": A.AUTHENTICATED}),
    **_service("civicscore.v1.AuditService", {"ListAuditEvents": P.AUDIT, "VerifyAudit": P.AUDIT}),
    **_service("civicscore.v1.ReportService", {"GetQuarterlyReport": P.READ}),
    **_service("civicscore.v1.ReviewService", {
        "ReviewRecommendation": P.REVIEW, "ListRecommendationReviews": P.READ, "ContestRecommendation": P.CONTEST,
        "GetContest": P.READ, "ListContests": P.READ, "WatchRecommendations": P.READ}),
    **_service("civicscore.v1.MaintenanceService", {"CheckStoredData": P.DATA_CHECK}),
    **_service("civicscore.v1.ExtensionService", {
        # A reporter for the assignments of its units (checked by the use case); committee and admin for any.
        "RequestExtension": P.EXTENSION_REQUEST, "DecideExtension": P.EXTENSION_DECIDE,
        "GetExtension": P.READ, "ListExtensions": P.READ}),
    **_service("civicscore.v1.ObstacleService", {
        # A reporter for the assignments of its units (checked by the use case); committee and admin for any.
        "ReportObstacle": P.OBSTACLE_REPORT, "AssignObstacle": P.OBSTACLE_RESOLVE,
        "ResolveObstacle": P.OBSTACLE_RESOLVE, "GetObstacle": P.READ, "ListObstacles": P.READ}),
    **_service("civicscore.v1.OfficialService", {
        # Reads are personal data: audited; a reporter sees the officials of its units only (the use case).
        "UpsertOfficials": P.OFFICIALS, "DeleteOfficial": P.OFFICIALS, "GetOfficial": P.PERSONAL,
        "ListOfficials": P.PERSONAL, "GetOfficialEvaluation": P.PERSONAL, "ListOfficialEvaluations": P.PERSONAL,
        "ListOfficialRecommendations": P.PERSONAL}),
}

REFLECTION_METHODS = frozenset({
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
})


def roles_granting(permission: Permission) -> list[str]:
    """The roles that grant a permission, for refusal messages."""
    return [role.value for role, granted in ROLE_PERMISSIONS.items() if permission in granted]
