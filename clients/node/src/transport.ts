/**
 * Channel credentials, channel options and the bearer token's rules.
 *
 * Plaintext by default (the server accepts it on loopback addresses only); TLS when a CA
 * certificate is given; mutual TLS with a client certificate and key. A token is never sent in
 * plaintext to an address outside this machine.
 */
import { readFileSync } from "node:fs";
import { isIP } from "node:net";

import { credentials as grpcCredentials } from "@grpc/grpc-js";
import type { ChannelCredentials, ChannelOptions } from "@grpc/grpc-js";

/** PEM text, PEM bytes, or the path of a PEM file (a string that does not start with `-----BEGIN`). */
export type PemSource = string | Uint8Array;

const MIB = 1024 * 1024;
const PEM_BEGIN = "-----BEGIN";
// Printable ASCII without spaces: what a metadata value may carry, and what tokens are made of.
const TOKEN_CHARACTERS = /^[\x21-\x7e]+$/;

/** Credentials or TLS files given to a client cannot be used; the message never holds a token. */
export class CredentialsError extends Error {
  override readonly name = "CredentialsError";
}

/** The `authorization` metadata value for a token; throws CredentialsError (without the token) when unusable. */
export function bearerValue(token: string): string {
  const value = token.trim();
  if (value === "") {
    throw new CredentialsError("the token is empty");
  }
  if (value.toLowerCase().startsWith("bearer ")) {
    throw new CredentialsError("give the token alone, without the 'Bearer ' prefix");
  }
  if (!TOKEN_CHARACTERS.test(value)) {
    throw new CredentialsError(
      `the token (${value.length} characters) holds spaces, control or non-ASCII characters: ` +
        "it is not a civicscore token (they look like cs_<hex>_<43 characters>)",
    );
  }
  return `Bearer ${value}`;
}

/** PEM bytes from text, bytes or a file path; `kind` is the expected block, e.g. CERTIFICATE. */
export function readPem(source: PemSource, what: string, kind: string): Buffer {
  let data: Buffer;
  let origin: string;
  if (typeof source !== "string") {
    data = Buffer.from(source);
    origin = `the ${what} given`;
  } else if (source.trimStart().startsWith(PEM_BEGIN)) {
    data = Buffer.from(source, "utf8");
    origin = `the ${what} given`;
  } else {
    origin = `the ${what} file ${source}`;
    try {
      data = readFileSync(source);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "";
      const why =
        code === "ENOENT"
          ? "does not exist"
          : code === "EISDIR"
            ? "is a directory, not a PEM file"
            : code === "EACCES"
              ? "is not readable (permission denied)"
              : `cannot be read (${code || "error"})`;
      throw new CredentialsError(`${origin} ${why}`);
    }
  }
  const text = data.toString("latin1");
  if (!text.includes(`${PEM_BEGIN} `) || !text.includes(`${kind}-----`)) {
    throw new CredentialsError(`${origin} is not PEM: expected a '-----BEGIN ... ${kind}-----' block`);
  }
  if (kind === "PRIVATE KEY" && text.includes("ENCRYPTED")) {
    throw new CredentialsError(`${origin} is encrypted with a passphrase: gRPC needs an unencrypted key`);
  }
  return data;
}

export interface TransportOptions {
  caCert?: PemSource | undefined;
  clientCert?: PemSource | undefined;
  clientKey?: PemSource | undefined;
}

/** Whether TLS options were given. */
export function wantsTls(options: TransportOptions): boolean {
  return options.caCert !== undefined || options.clientCert !== undefined || options.clientKey !== undefined;
}

/** Channel credentials: insecure without TLS options; TLS with the CA (the system's when none); mTLS with cert + key. */
export function channelCredentials(options: TransportOptions): ChannelCredentials {
  if (!wantsTls(options)) {
    return grpcCredentials.createInsecure();
  }
  if ((options.clientCert === undefined) !== (options.clientKey === undefined)) {
    const [given, missing] =
      options.clientKey === undefined ? ["clientCert", "clientKey"] : ["clientKey", "clientCert"];
    throw new CredentialsError(`${given} is given without ${missing}: a client certificate needs both`);
  }
  const root = options.caCert === undefined ? null : readPem(options.caCert, "CA certificate", "CERTIFICATE");
  const chain =
    options.clientCert === undefined ? null : readPem(options.clientCert, "client certificate", "CERTIFICATE");
  const key = options.clientKey === undefined ? null : readPem(options.clientKey, "client key", "PRIVATE KEY");
  return grpcCredentials.createSsl(root, key, chain);
}

/**
 * Channel options: large messages and metadata (rich error details travel in a trailer), our own
 * connection per client, and grpc-js's built-in retries off (this client retries, with backoff).
 */
export function channelOptions(serverNameOverride: string | undefined): ChannelOptions {
  const options: ChannelOptions = {
    "grpc.max_receive_message_length": 64 * MIB,
    "grpc.max_send_message_length": 64 * MIB,
    "grpc.max_metadata_size": 4 * MIB,
    "grpc.enable_retries": 0,
    "grpc.use_local_subchannel_pool": 1,
  };
  if (serverNameOverride) {
    options["grpc.ssl_target_name_override"] = serverNameOverride;
    options["grpc.default_authority"] = serverNameOverride;
  }
  return options;
}

/** Whether a gRPC target names this machine only: loopback addresses, localhost, Unix sockets. */
export function isLocalTarget(target: string): boolean {
  let rest = target.trim();
  if (rest.startsWith("unix:") || rest.startsWith("unix-abstract:")) {
    return true;
  }
  const colon = rest.indexOf(":");
  const scheme = colon > 0 ? rest.slice(0, colon) : "";
  if (scheme === "ipv4" || scheme === "ipv6") {
    return rest
      .slice(colon + 1)
      .split(",")
      .every((part) => isLocalHost(hostOf(part)));
  }
  if (scheme === "dns") {
    rest = rest.slice(colon + 1);
    if (rest.startsWith("//")) {
      const slash = rest.indexOf("/", 2);
      rest = slash >= 0 ? rest.slice(slash + 1) : "";
    }
  }
  return isLocalHost(hostOf(rest));
}

function hostOf(target: string): string {
  if (target.startsWith("[")) {
    const end = target.indexOf("]");
    return end > 0 ? target.slice(1, end) : target;
  }
  if ((target.match(/:/g) ?? []).length > 1) {
    return target; // a bare IPv6 address
  }
  return target.split(":", 1)[0] ?? "";
}

function isLocalHost(host: string): boolean {
  const lower = host.toLowerCase().replace(/\.$/, "");
  if (lower === "localhost") {
    return true;
  }
  const family = isIP(lower);
  if (family === 4) {
    return lower.startsWith("127.");
  }
  if (family === 6) {
    if (lower === "::1" || /^(0{0,4}:){7}0{0,3}1$/.test(lower)) {
      return true;
    }
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower);
    return mapped?.[1]?.startsWith("127.") ?? false;
  }
  return false;
}
