/**
 * @civicscore/client: the Node.js client of the civicscore gRPC API.
 *
 * ```ts
 * import { CivicscoreClient, pb } from "@civicscore/client";
 * const client = new CivicscoreClient({ address: "127.0.0.1:50051", token: process.env.CIVICSCORE_TOKEN });
 * const { unit } = await client.units.getUnit({ name: "units/SNV" });
 * client.close();
 * ```
 */
export { CivicscoreClient, SERVICES } from "./client.js";
export type {
  CallOptions,
  ClientOptions,
  ClientStreamingMethod,
  DeepPartial,
  MethodOf,
  ResponseStream,
  ServerStreamingMethod,
  ServiceClient,
  StreamCallOptions,
  UnaryMethod,
} from "./client.js";
export {
  CivicscoreError,
  CODE_NAMES,
  codeName,
  decodeDetails,
  isTlsHandshakeFailure,
  STATUS_DETAILS_KEY,
} from "./errors.js";
export type { ErrorDetails } from "./errors.js";
export { CredentialsError, isLocalTarget } from "./transport.js";
export type { PemSource } from "./transport.js";
export { status } from "@grpc/grpc-js";
export * as pb from "./pb.js";
