/**
 * Failed calls become a {@link CivicscoreError}: the gRPC status code (number and name), the
 * server's message, and the rich `google.rpc.Status` details the server sends in the
 * `grpc-status-details-bin` trailer, decoded (BadRequest field violations, ErrorInfo,
 * RetryInfo and the other types of google/rpc/error_details.proto).
 *
 * Nothing in an error comes from the request's metadata, so a bearer token never appears in an
 * error's message, its properties or its string form.
 */
import { Metadata, status as GrpcStatus } from "@grpc/grpc-js";
import type { ServiceError } from "@grpc/grpc-js";

import type { Any } from "./gen/google/protobuf/any.js";
import {
  BadRequest,
  DebugInfo,
  ErrorInfo,
  Help,
  LocalizedMessage,
  PreconditionFailure,
  QuotaFailure,
  RequestInfo,
  ResourceInfo,
  RetryInfo,
} from "./gen/google/rpc/error_details.js";
import type { BadRequest_FieldViolation } from "./gen/google/rpc/error_details.js";
import { Status } from "./gen/google/rpc/status.js";

/** The trailer that carries a serialized `google.rpc.Status`. */
export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

/** gRPC status codes by number, e.g. 3 -> "INVALID_ARGUMENT". */
export const CODE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(
    Object.entries(GrpcStatus)
      .filter((entry): entry is [string, number] => typeof entry[1] === "number")
      .map(([name, code]) => [code, name]),
  ),
);

/** The name of a gRPC status code, e.g. "UNAVAILABLE"; "CODE_<n>" for an unknown number. */
export function codeName(code: number): string {
  return CODE_NAMES[code] ?? `CODE_${code}`;
}

/** Every detail type of google/rpc/error_details.proto, decoded, keyed by its property name. */
export interface ErrorDetails {
  badRequest?: BadRequest;
  errorInfo?: ErrorInfo;
  retryInfo?: RetryInfo;
  debugInfo?: DebugInfo;
  quotaFailure?: QuotaFailure;
  preconditionFailure?: PreconditionFailure;
  requestInfo?: RequestInfo;
  resourceInfo?: ResourceInfo;
  help?: Help;
  localizedMessage?: LocalizedMessage;
}

interface Decoder<T> {
  decode(input: Uint8Array): T;
}

const DECODERS: { readonly [K in keyof ErrorDetails]-?: readonly [string, Decoder<NonNullable<ErrorDetails[K]>>] } = {
  badRequest: ["BadRequest", BadRequest],
  errorInfo: ["ErrorInfo", ErrorInfo],
  retryInfo: ["RetryInfo", RetryInfo],
  debugInfo: ["DebugInfo", DebugInfo],
  quotaFailure: ["QuotaFailure", QuotaFailure],
  preconditionFailure: ["PreconditionFailure", PreconditionFailure],
  requestInfo: ["RequestInfo", RequestInfo],
  resourceInfo: ["ResourceInfo", ResourceInfo],
  help: ["Help", Help],
  localizedMessage: ["LocalizedMessage", LocalizedMessage],
};

/**
 * Decode the known detail types of a status, matched by type URL
 * (`type.googleapis.com/google.rpc.BadRequest`, ...); unknown or undecodable details are kept in `unknown`.
 */
export function decodeDetails(details: readonly Any[]): { decoded: ErrorDetails; unknown: Any[] } {
  const decoded: ErrorDetails = {};
  const unknown: Any[] = [];
  for (const any of details) {
    const typeName = any.typeUrl.slice(any.typeUrl.lastIndexOf("/") + 1);
    const key = (Object.keys(DECODERS) as (keyof ErrorDetails)[]).find(
      (k) => `google.rpc.${DECODERS[k][0]}` === typeName,
    );
    if (key === undefined || decoded[key] !== undefined) {
      unknown.push(any);
      continue;
    }
    try {
      setDetail(decoded, key, any.value);
    } catch {
      unknown.push(any);
    }
  }
  return { decoded, unknown };
}

function setDetail<K extends keyof ErrorDetails>(target: ErrorDetails, key: K, value: Uint8Array): void {
  const decoder = DECODERS[key][1] as Decoder<NonNullable<ErrorDetails[K]>>;
  target[key] = decoder.decode(value);
}

export interface CivicscoreErrorInit {
  code: number;
  details: string;
  /** The decoded google.rpc.Status of the trailer, when the server sent one. */
  status?: Status | undefined;
  /** How many attempts were made (more than 1 when UNAVAILABLE was retried). */
  attempts?: number | undefined;
  /** The method, e.g. `/civicscore.v1.OutcomeService/SubmitOutcomes`. */
  method?: string | undefined;
}

/** A failed call. `code` is the gRPC status number, `codeName` its name. */
export class CivicscoreError extends Error implements ErrorDetails {
  override readonly name = "CivicscoreError";
  /** gRPC status code number, e.g. 3; see `codeName` and `@grpc/grpc-js`'s `status` enum. */
  readonly code: number;
  /** gRPC status code name, e.g. `INVALID_ARGUMENT`. */
  readonly codeName: string;
  /** The server's (or the transport's) message, as sent. */
  readonly details: string;
  /** The method called, e.g. `/civicscore.v1.OutcomeService/SubmitOutcomes`. */
  readonly method: string;
  /** Attempts made, 1 unless UNAVAILABLE was retried. */
  readonly attempts: number;
  /** True when the server sent a google.rpc.Status (false for transport failures such as a refused connection). */
  readonly fromServer: boolean;
  /** The whole decoded google.rpc.Status, when sent. */
  readonly status: Status | undefined;
  readonly badRequest?: BadRequest;
  readonly errorInfo?: ErrorInfo;
  readonly retryInfo?: RetryInfo;
  readonly debugInfo?: DebugInfo;
  readonly quotaFailure?: QuotaFailure;
  readonly preconditionFailure?: PreconditionFailure;
  readonly requestInfo?: RequestInfo;
  readonly resourceInfo?: ResourceInfo;
  readonly help?: Help;
  readonly localizedMessage?: LocalizedMessage;
  /** Details of types this client does not know, still packed. */
  readonly unknownDetails: readonly Any[];

  constructor(init: CivicscoreErrorInit) {
    const name = codeName(init.code);
    super(`${name}: ${init.details || "(no message)"}`);
    this.code = init.code;
    this.codeName = name;
    this.details = init.details;
    this.method = init.method ?? "";
    this.attempts = init.attempts ?? 1;
    this.status = init.status;
    this.fromServer = init.status !== undefined;
    const { decoded, unknown } = decodeDetails(init.status?.details ?? []);
    Object.assign(this, decoded);
    this.unknownDetails = unknown;
  }

  /** BadRequest field violations (empty when none were sent). */
  get fieldViolations(): readonly BadRequest_FieldViolation[] {
    return this.badRequest?.fieldViolations ?? [];
  }

  /** ErrorInfo's reason, e.g. `PERMISSION_MISSING`; empty when none was sent. */
  get reason(): string {
    return this.errorInfo?.reason ?? "";
  }

  /** RetryInfo's delay in milliseconds, when the server said when to retry. */
  get retryDelayMs(): number | undefined {
    const delay = this.retryInfo?.retryDelay;
    return delay === undefined ? undefined : delay.seconds * 1000 + delay.nanos / 1e6;
  }

  override toString(): string {
    return `${this.name}: ${this.message}`;
  }
}

/** Whether a value is a grpc-js ServiceError (an Error with a numeric `code` and `metadata`). */
export function isServiceError(value: unknown): value is ServiceError {
  return (
    value instanceof Error &&
    typeof (value as Partial<ServiceError>).code === "number" &&
    (value as Partial<ServiceError>).metadata instanceof Metadata
  );
}

/** The google.rpc.Status in a call's trailers, when the server sent one that decodes. */
export function statusFromMetadata(metadata: Metadata | undefined): Status | undefined {
  const values = metadata?.get(STATUS_DETAILS_KEY) ?? [];
  const raw = values[0];
  if (raw === undefined || typeof raw === "string") {
    return undefined;
  }
  try {
    return Status.decode(raw);
  } catch {
    return undefined;
  }
}

/** A CivicscoreError from whatever a grpc-js call failed with. */
export function toCivicscoreError(error: unknown, method: string, attempts = 1): CivicscoreError {
  if (error instanceof CivicscoreError) {
    return error;
  }
  if (isServiceError(error)) {
    return new CivicscoreError({
      code: error.code,
      details: error.details,
      status: statusFromMetadata(error.metadata),
      attempts,
      method,
    });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new CivicscoreError({ code: GrpcStatus.UNKNOWN, details: message, attempts, method });
}

const TLS_FAILURE =
  /handshake|certificate|self[- ]signed|unable to verify|altnames|wrong version number|ssl|tls|ERR_SSL|ERR_TLS|EPROTO/i;

/**
 * Whether an UNAVAILABLE error is a failed TLS handshake (unknown CA, wrong server name, a
 * plaintext server): that does not fix itself, so it is not retried.
 */
export function isTlsHandshakeFailure(error: CivicscoreError): boolean {
  return error.code === GrpcStatus.UNAVAILABLE && !error.fromServer && TLS_FAILURE.test(error.details);
}
