#!/usr/bin/env node
// Generates TypeScript message types and service definitions into src/gen/ with ts-proto,
// driven by grpcio-tools' protoc from the repository's Python virtual environment.
//
// src/gen/ is not committed: `npm run build` runs this script before tsc, so the generated
// code always matches protos/. The Python interpreter is $CIVICSCORE_PYTHON, or
// <repo>/.venv/bin/python by default (the one `make venv` creates).
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, "..");
const repo = resolve(pkg, "..", "..");
const protos = join(repo, "protos");
const out = join(pkg, "src", "gen");
const python = process.env.CIVICSCORE_PYTHON || join(repo, ".venv", "bin", "python");
const plugin = join(pkg, "node_modules", ".bin", "protoc-gen-ts_proto");

function fail(message) {
  console.error(`gen: ${message}`);
  process.exit(1);
}

if (!existsSync(python)) {
  fail(`no Python at ${python}: run \`make venv\` in ${repo}, or set CIVICSCORE_PYTHON`);
}
if (!existsSync(plugin)) {
  fail(`no ${relative(pkg, plugin)}: run \`npm ci\` first`);
}

// Where grpcio-tools keeps google/protobuf/*.proto, and where googleapis-common-protos keeps
// google/rpc/*.proto (both are installed in the virtual environment).
const probe = spawnSync(
  python,
  [
    "-c",
    "import os, grpc_tools, google.rpc.status_pb2 as s; " +
      "print(os.path.join(os.path.dirname(grpc_tools.__file__), '_proto')); " +
      "print(os.path.dirname(os.path.dirname(os.path.dirname(s.__file__))))",
  ],
  { encoding: "utf8" },
);
if (probe.status !== 0) {
  fail(`cannot find grpc_tools and google.rpc with ${python}:\n${probe.stderr}`);
}
const [wellKnown, googleApis] = probe.stdout.trim().split("\n");
if (!wellKnown || !googleApis) {
  fail(`unexpected output from ${python}: ${probe.stdout}`);
}

const civicscore = readdirSync(join(protos, "civicscore", "v1"))
  .filter((name) => name.endsWith(".proto"))
  .sort()
  .map((name) => `civicscore/v1/${name}`);
const files = [...civicscore, "google/rpc/status.proto", "google/rpc/error_details.proto"];

// ts-proto options, see https://github.com/stephenh/ts-proto#supported-options
const options = [
  // grpc-js ServiceDefinitions and clients (for raw use), plus generic definitions that name the
  // request and response message types; the wrapper in src/client.ts is built from the latter.
  "outputServices=grpc-js",
  "outputServices=generic-definitions",
  "esModuleInterop=true",
  "env=node",
  "importSuffix=.js", // ES modules: relative imports need the extension
  "useOptionals=messages", // nested messages may be absent; scalars always have a value
  "oneof=unions", // { $case: "chunk", chunk: {...} }
  "useDate=true", // google.protobuf.Timestamp <-> Date
  "forceLong=number", // int64 as number (ids and counts stay far below 2^53)
  "outputJsonMethods=false",
  "useExactTypes=false",
  "snakeToCamel=keys",
  "unrecognizedEnum=true",
];

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const args = [
  "-m",
  "grpc_tools.protoc",
  `--plugin=protoc-gen-ts_proto=${plugin}`,
  `--ts_proto_out=${out}`,
  `--ts_proto_opt=${options.join(",")}`,
  `-I${protos}`,
  `-I${googleApis}`,
  `-I${wellKnown}`,
  ...files,
];
const run = spawnSync(python, args, { cwd: pkg, stdio: "inherit" });
if (run.status !== 0) {
  fail(`protoc failed (exit ${run.status ?? run.signal})`);
}
console.log(`gen: ${files.length} protos -> ${relative(pkg, out)}/`);
