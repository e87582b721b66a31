/**
 * CivicscoreClient: one channel, one typed property per service, one typed function per method,
 * all derived from ts-proto's generic service definitions (nothing listed by hand but the services).
 *
 * Unary calls get a deadline per attempt (30 s by default) and are retried on UNAVAILABLE with
 * exponential backoff and full jitter (not when a TLS handshake failed: that does not fix itself).
 * A request with an empty `idempotencyKey` gets a random UUID once, before the first attempt, so
 * every retry carries the same key and the server answers a retried write with its first reply
 * instead of writing again. Streaming calls are made once, never retried.
 */
import { randomUUID } from "node:crypto";
import { once } from "node:events";

import { Client, Metadata, status as GrpcStatus } from "@grpc/grpc-js";
import type { CallOptions as GrpcCallOptions, ServiceError } from "@grpc/grpc-js";
import type { BinaryReader, BinaryWriter } from "@bufbuild/protobuf/wire";

import { CivicscoreError, isTlsHandshakeFailure, toCivicscoreError } from "./errors.js";
import { AssignmentServiceDefinition } from "./gen/civicscore/v1/assignments.js";
import { AuditServiceDefinition } from "./gen/civicscore/v1/audit.js";
import { EvaluationServiceDefinition } from "./gen/civicscore/v1/evaluations.js";
import { ExtensionServiceDefinition } from "./gen/civicscore/v1/extensions.js";
import { IdentityServiceDefinition } from "./gen/civicscore/v1/identities.js";
import { MaintenanceServiceDefinition } from "./gen/civicscore/v1/maintenance.js";
import { MeasurementServiceDefinition } from "./gen/civicscore/v1/measurements.js";
import { ObstacleServiceDefinition } from "./gen/civicscore/v1/obstacles.js";
import { OfficialServiceDefinition } from "./gen/civicscore/v1/officials.js";
import { OutcomeServiceDefinition } from "./gen/civicscore/v1/outcomes.js";
import type { DeepPartial } from "./gen/civicscore/v1/outcomes.js";
import { PeriodServiceDefinition } from "./gen/civicscore/v1/periods.js";
import { ReportServiceDefinition } from "./gen/civicscore/v1/reports.js";
import { ReviewServiceDefinition } from "./gen/civicscore/v1/reviews.js";
import { RulesetServiceDefinition } from "./gen/civicscore/v1/rulesets.js";
import { UnitServiceDefinition } from "./gen/civicscore/v1/units.js";
import {
  bearerValue,
  channelCredentials,
  channelOptions,
  CredentialsError,
  isLocalTarget,
  wantsTls,
} from "./transport.js";
import type { PemSource } from "./transport.js";

export type { DeepPartial };

/** The services of civicscore.v1, by the client property that exposes each. */
export const SERVICES = {
  units: UnitServiceDefinition,
  assignments: AssignmentServiceDefinition,
  outcomes: OutcomeServiceDefinition,
  measurements: MeasurementServiceDefinition,
  periods: PeriodServiceDefinition,
  evaluations: EvaluationServiceDefinition,
  rulesets: RulesetServiceDefinition,
  identities: IdentityServiceDefinition,
  reviews: ReviewServiceDefinition,
  extensions: ExtensionServiceDefinition,
  obstacles: ObstacleServiceDefinition,
  officials: OfficialServiceDefinition,
  reports: ReportServiceDefinition,
  audit: AuditServiceDefinition,
  maintenance: MaintenanceServiceDefinition,
} as const;

export interface ClientOptions {
  /** `host:port` (or any gRPC target), e.g. `127.0.0.1:50051`. */
  address: string;
  /** Bearer token, sent as `authorization: Bearer <token>` with every call; never over plaintext to a remote host. */
  token?: string | undefined;
  /** CA certificate (PEM text, bytes or file path) that signs the server's certificate: enables TLS. */
  caCert?: PemSource | undefined;
  /** Client certificate for mutual TLS (with `clientKey`). */
  clientCert?: PemSource | undefined;
  /** The client certificate's unencrypted private key. */
  clientKey?: PemSource | undefined;
  /** Check the server certificate against this name instead of the address's host (TLS only). */
  serverNameOverride?: string | undefined;
  /** Deadline of each attempt of a unary call, in ms (default 30,000). */
  deadlineMs?: number | undefined;
  /** Attempts of a unary call that fails with UNAVAILABLE, the first included (default 5). */
  maxAttempts?: number | undefined;
  /** Upper bound of the first backoff, in ms (default 200); doubles after each attempt. */
  initialBackoffMs?: number | undefined;
  /** Cap of the backoff bound, in ms (default 5,000). */
  maxBackoffMs?: number | undefined;
}

export interface CallOptions {
  /** Deadline of each attempt in ms; the client's `deadlineMs` when not given. */
  deadlineMs?: number | undefined;
  /** Cancels the call (and any backoff wait) when aborted; the call then fails with CANCELLED. */
  signal?: AbortSignal | undefined;
}

export interface StreamCallOptions {
  /**
   * Deadline of the whole stream in ms. Client streams default to the client's `deadlineMs`;
   * server streams (watches) have no deadline unless one is given.
   */
  deadlineMs?: number | undefined;
  /** Cancels the stream when aborted. */
  signal?: AbortSignal | undefined;
}

/** A unary method: resolves with the reply or rejects with a CivicscoreError. */
export type UnaryMethod<Req, Res> = (request: DeepPartial<Req>, options?: CallOptions) => Promise<Res>;

/**
 * A client-streaming method: sends each request of `requests` in order, then half-closes; never
 * retried. If `requests` throws, the call is cancelled (the server stores nothing without the
 * final message) and the promise rejects with that error.
 */
export type ClientStreamingMethod<Req, Res> = (
  requests: Iterable<DeepPartial<Req>> | AsyncIterable<DeepPartial<Req>>,
  options?: StreamCallOptions,
) => Promise<Res>;

/** The replies of a server-streaming call; leaving a `for await` loop early cancels the call. */
export interface ResponseStream<Res> extends AsyncIterable<Res> {
  /** Cancel the call; iteration then ends without an error. */
  cancel(): void;
}

/** A server-streaming method; iterating throws a CivicscoreError when the call fails; never retried. */
export type ServerStreamingMethod<Req, Res> = (
  request: DeepPartial<Req>,
  options?: StreamCallOptions,
) => ResponseStream<Res>;

/** What ts-proto generates for a message type. */
interface MessageFns<T> {
  encode(message: T, writer?: BinaryWriter): BinaryWriter;
  decode(input: BinaryReader | Uint8Array, length?: number): T;
  fromPartial(object: DeepPartial<T>): T;
}

type MessageOf<F> = F extends { decode(input: Uint8Array, length?: number): infer T } ? T : never;

/** The typed function for one method definition. */
export type MethodOf<M> = M extends {
  readonly requestType: infer ReqFns;
  readonly responseType: infer ResFns;
  readonly requestStream: infer ClientStreams;
  readonly responseStream: infer ServerStreams;
}
  ? ClientStreams extends true
    ? ServerStreams extends true
      ? never // no bidirectional methods in civicscore.v1
      : ClientStreamingMethod<MessageOf<ReqFns>, MessageOf<ResFns>>
    : ServerStreams extends true
      ? ServerStreamingMethod<MessageOf<ReqFns>, MessageOf<ResFns>>
      : UnaryMethod<MessageOf<ReqFns>, MessageOf<ResFns>>
  : never;

/** One service's methods, e.g. `client.outcomes.submitOutcomes`. */
export type ServiceClient<D extends { readonly methods: object }> = {
  readonly [K in keyof D["methods"]]: MethodOf<D["methods"][K]>;
};

type Services = { readonly [K in keyof typeof SERVICES]: ServiceClient<(typeof SERVICES)[K]> };

/** The untyped view of a method definition the implementation works with. */
interface AnyMethod {
  readonly name: string;
  readonly requestType: MessageFns<Record<string, unknown>>;
  readonly responseType: MessageFns<unknown>;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

/** One method as the transport needs it: its path and how its messages are (de)serialized. */
interface Route {
  readonly path: string;
  readonly method: AnyMethod;
  readonly serialize: (value: Record<string, unknown>) => Buffer;
  readonly deserialize: (bytes: Buffer) => unknown;
}

/** The full request message from a partial one (absent fields take their proto defaults). */
function fullRequest(route: Route, partial: unknown): Record<string, unknown> {
  return route.method.requestType.fromPartial((partial ?? {}) as DeepPartial<Record<string, unknown>>);
}

interface RetryPolicy {
  maxAttempts: number;
  initialBackoffMs: number;
  maxBackoffMs: number;
}

const sleep = (ms: number, signal: AbortSignal | undefined): Promise<void> =>
  new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });

function cancelledError(method: string, attempts: number): CivicscoreError {
  return new CivicscoreError({ code: GrpcStatus.CANCELLED, details: "cancelled by the caller", method, attempts });
}

function positive(name: string, value: number, minimum: number): number {
  if (!Number.isFinite(value) || value < minimum) {
    throw new RangeError(`${name} must be a number of at least ${minimum}, not ${value}`);
  }
  return value;
}

/** A civicscore client: `client.<service>.<method>(request, options)`; `close()` when done. */
export class CivicscoreClient implements Services {
  declare readonly units: Services["units"];
  declare readonly assignments: Services["assignments"];
  declare readonly outcomes: Services["outcomes"];
  declare readonly measurements: Services["measurements"];
  declare readonly periods: Services["periods"];
  declare readonly evaluations: Services["evaluations"];
  declare readonly rulesets: Services["rulesets"];
  declare readonly identities: Services["identities"];
  declare readonly reviews: Services["reviews"];
  declare readonly extensions: Services["extensions"];
  declare readonly obstacles: Services["obstacles"];
  declare readonly officials: Services["officials"];
  declare readonly reports: Services["reports"];
  declare readonly audit: Services["audit"];
  declare readonly maintenance: Services["maintenance"];

  /** The address the client connects to. */
  readonly address: string;
  /** Whether the channel uses TLS. */
  readonly secure: boolean;
  /** Default deadline of each attempt, in ms. */
  readonly deadlineMs: number;

  readonly #channel: Client;
  readonly #authorization: string | undefined;
  readonly #retry: RetryPolicy;

  constructor(options: ClientOptions) {
    const {
      address,
      token,
      serverNameOverride,
      deadlineMs = 30_000,
      maxAttempts = 5,
      initialBackoffMs = 200,
      maxBackoffMs = 5_000,
    } = options;
    if (typeof address !== "string" || address.trim() === "") {
      throw new CredentialsError("address is required, e.g. 127.0.0.1:50051");
    }
    this.address = address;
    this.deadlineMs = positive("deadlineMs", deadlineMs, 1);
    this.#retry = {
      maxAttempts: Math.floor(positive("maxAttempts", maxAttempts, 1)),
      initialBackoffMs: positive("initialBackoffMs", initialBackoffMs, 0),
      maxBackoffMs: positive("maxBackoffMs", maxBackoffMs, 0),
    };
    this.secure = wantsTls(options);
    if (token !== undefined) {
      if (!this.secure && !isLocalTarget(address)) {
        throw new CredentialsError(
          `refusing to send the token in plaintext to ${address}: give the server's CA certificate (caCert) to use TLS`,
        );
      }
      this.#authorization = bearerValue(token);
    }
    if (serverNameOverride && !this.secure) {
      throw new CredentialsError("serverNameOverride needs TLS: give caCert too");
    }
    this.#channel = new Client(address, channelCredentials(options), channelOptions(serverNameOverride));
    for (const [property, definition] of Object.entries(SERVICES)) {
      const methods: Record<string, unknown> = {};
      for (const [key, method] of Object.entries(definition.methods)) {
        methods[key] = this.#bind(`/${definition.fullName}/${method.name}`, method as AnyMethod);
      }
      Object.defineProperty(this, property, { value: Object.freeze(methods), enumerable: true });
    }
  }

  /** Close the channel; calls in flight are cancelled. */
  close(): void {
    this.#channel.close();
  }

  toString(): string {
    return `CivicscoreClient(${this.address}, tls=${this.secure}, token=${this.#authorization ? "<hidden>" : "none"})`;
  }

  /** Shown by console.log / util.inspect: never the token. */
  [Symbol.for("nodejs.util.inspect.custom")](): string {
    return this.toString();
  }

  toJSON(): Record<string, unknown> {
    return { address: this.address, secure: this.secure, token: this.#authorization ? "<hidden>" : null };
  }

  #metadata(): Metadata {
    const metadata = new Metadata();
    if (this.#authorization !== undefined) {
      metadata.set("authorization", this.#authorization);
    }
    return metadata;
  }

  #bind(path: string, method: AnyMethod): unknown {
    const route: Route = {
      path,
      method,
      serialize: (value) => Buffer.from(method.requestType.encode(value).finish()),
      deserialize: (bytes) => method.responseType.decode(bytes),
    };
    if (method.requestStream && method.responseStream) {
      return undefined; // no bidirectional methods in civicscore.v1
    }
    if (method.requestStream) {
      return (requests: Iterable<unknown> | AsyncIterable<unknown>, options?: StreamCallOptions) =>
        this.#clientStream(route, requests, options);
    }
    if (method.responseStream) {
      return (request: unknown, options?: StreamCallOptions) => this.#serverStream(route, request, options);
    }
    return (request: unknown, options?: CallOptions) => this.#unary(route, request, options);
  }

  async #unary(
    route: Route,
    partial: unknown,
    options: CallOptions | undefined,
  ): Promise<unknown> {
    const request = fullRequest(route, partial);
    const { path } = route;
    // One key per logical write, chosen before the first attempt and resent by every retry.
    if (typeof request["idempotencyKey"] === "string" && request["idempotencyKey"] === "") {
      request["idempotencyKey"] = randomUUID();
    }
    const deadlineMs = positive("deadlineMs", options?.deadlineMs ?? this.deadlineMs, 1);
    const signal = options?.signal;
    const { maxAttempts, initialBackoffMs, maxBackoffMs } = this.#retry;
    let bound = initialBackoffMs;
    for (let attempt = 1; ; attempt++) {
      if (signal?.aborted) {
        throw cancelledError(path, attempt - 1);
      }
      try {
        return await this.#attempt(route, request, deadlineMs, signal);
      } catch (raw) {
        const error = toCivicscoreError(raw, path, attempt);
        const retryable = error.code === GrpcStatus.UNAVAILABLE && !isTlsHandshakeFailure(error);
        if (!retryable || attempt >= maxAttempts || signal?.aborted) {
          throw error;
        }
      }
      // Full jitter keeps many clients that lost the same server from retrying in step.
      try {
        await sleep(Math.random() * bound, signal);
      } catch {
        throw cancelledError(path, attempt);
      }
      bound = Math.min(bound * 2, maxBackoffMs);
    }
  }

  #attempt(
    route: Route,
    request: Record<string, unknown>,
    deadlineMs: number,
    signal: AbortSignal | undefined,
  ): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const callOptions: GrpcCallOptions = { deadline: Date.now() + deadlineMs };
      const call = this.#channel.makeUnaryRequest(
        route.path,
        route.serialize,
        route.deserialize,
        request,
        this.#metadata(),
        callOptions,
        (error: ServiceError | null, reply?: unknown) => {
          signal?.removeEventListener("abort", onAbort);
          if (error) {
            reject(error);
          } else {
            resolve(reply);
          }
        },
      );
      const onAbort = (): void => call.cancel();
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  async #clientStream(
    route: Route,
    requests: Iterable<unknown> | AsyncIterable<unknown>,
    options: StreamCallOptions | undefined,
  ): Promise<unknown> {
    const deadlineMs = positive("deadlineMs", options?.deadlineMs ?? this.deadlineMs, 1);
    const signal = options?.signal;
    const { path } = route;
    if (signal?.aborted) {
      throw cancelledError(path, 0);
    }
    let callback!: (error: ServiceError | null, reply?: unknown) => void;
    const reply = new Promise<unknown>((resolve, reject) => {
      callback = (error, value) => (error ? reject(error) : resolve(value));
    });
    const call = this.#channel.makeClientStreamRequest(
      path,
      route.serialize,
      route.deserialize,
      this.#metadata(),
      { deadline: Date.now() + deadlineMs },
      callback,
    );
    const onAbort = (): void => call.cancel();
    signal?.addEventListener("abort", onAbort, { once: true });
    let finished = false;
    reply.then(
      () => (finished = true),
      () => (finished = true),
    );
    try {
      try {
        for await (const partial of requests) {
          if (finished) {
            break; // the call already ended (error or early reply): its outcome is in `reply`
          }
          const message = route.method.requestType.fromPartial(partial as DeepPartial<Record<string, unknown>>);
          if (!call.write(message)) {
            await Promise.race([once(call, "drain"), reply.catch(() => undefined)]);
          }
        }
      } catch (sourceError) {
        call.cancel(); // no commit marker reaches the server: nothing is stored
        await reply.catch(() => undefined);
        throw sourceError;
      }
      call.end();
      return await reply;
    } catch (error) {
      throw isServiceErrorLike(error) ? toCivicscoreError(error, path) : error;
    } finally {
      signal?.removeEventListener("abort", onAbort);
    }
  }

  #serverStream(
    route: Route,
    partial: unknown,
    options: StreamCallOptions | undefined,
  ): ResponseStream<unknown> {
    const request = fullRequest(route, partial);
    const { path } = route;
    const callOptions: GrpcCallOptions =
      options?.deadlineMs === undefined
        ? {}
        : { deadline: Date.now() + positive("deadlineMs", options.deadlineMs, 1) };
    const call = this.#channel.makeServerStreamRequest(
      path,
      route.serialize,
      route.deserialize,
      request,
      this.#metadata(),
      callOptions,
    );
    let cancelled = false;
    const cancel = (): void => {
      cancelled = true;
      call.cancel();
    };
    const signal = options?.signal;
    signal?.addEventListener("abort", cancel, { once: true });
    if (signal?.aborted) {
      cancel();
    }
    // Errors surface through the iterator; this keeps an unread stream's error from being unhandled.
    call.on("error", () => undefined);
    async function* replies(): AsyncGenerator<unknown, void, undefined> {
      try {
        for await (const reply of call) {
          yield reply;
        }
      } catch (error) {
        if (cancelled && isServiceErrorLike(error) && error.code === GrpcStatus.CANCELLED) {
          return;
        }
        throw toCivicscoreError(error, path);
      } finally {
        signal?.removeEventListener("abort", cancel);
        call.cancel(); // a no-op once the call has ended
      }
    }
    const iterator = replies();
    return {
      cancel,
      [Symbol.asyncIterator]: () => iterator,
    };
  }
}

function isServiceErrorLike(value: unknown): value is ServiceError {
  return value instanceof Error && typeof (value as Partial<ServiceError>).code === "number";
}
