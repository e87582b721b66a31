/**
 * Starts the real civicscore server (`python -m civicscore`) on a free loopback port with its own
 * SQLite database in a temporary folder, for the tests. The Python interpreter is
 * $CIVICSCORE_PYTHON, or <repo>/.venv/bin/python.
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { Client, credentials, Metadata } from "@grpc/grpc-js";

const here = dirname(fileURLToPath(import.meta.url));
// dist/test/support -> clients/node -> repository root
export const PACKAGE_ROOT = resolve(here, "..", "..", "..");
export const REPO_ROOT = resolve(PACKAGE_ROOT, "..", "..");
export const PYTHON = process.env["CIVICSCORE_PYTHON"] || join(REPO_ROOT, ".venv", "bin", "python");

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export interface ServerOptions {
  demoData?: boolean;
  extraArgs?: string[];
  /** When the server listens with TLS: its CA certificate file and the name its certificate holds. */
  tls?: { caCert: string; serverNameOverride: string };
}

export class ServerProcess {
  readonly workdir: string;
  address = "";
  port = 0;
  /** The bootstrap administrator's token (every role). */
  token = "";
  #proc: ChildProcess | undefined;

  constructor() {
    this.workdir = mkdtempSync(join(tmpdir(), "civicscore-node-"));
  }

  static async start(options: ServerOptions = {}): Promise<ServerProcess> {
    const server = new ServerProcess();
    await server.start(options);
    return server;
  }

  async start(options: ServerOptions = {}, timeoutMs = 60_000): Promise<void> {
    const portFile = join(this.workdir, "port");
    const tokenFile = join(this.workdir, "admin.token");
    const log = openSync(join(this.workdir, "server.log"), "a");
    const args = [
      "-m",
      "civicscore",
      "--listen",
      "127.0.0.1:0",
      "--database",
      `sqlite:///${join(this.workdir, "civicscore.db")}`,
      "--rules",
      join(REPO_ROOT, "rules"),
      "--port-file",
      portFile,
      "--workers",
      "1",
      "--bootstrap-admin-token-file",
      tokenFile,
      "--no-watch-rules",
      ...(options.demoData ? ["--demo-data"] : []),
      ...(options.extraArgs ?? []),
    ];
    const pythonPath = [REPO_ROOT, process.env["PYTHONPATH"]].filter(Boolean).join(":");
    const proc = spawn(PYTHON, args, {
      cwd: this.workdir,
      env: { ...process.env, PYTHONPATH: pythonPath, PYTHONUNBUFFERED: "1" },
      stdio: ["ignore", log, log],
    });
    this.#proc = proc;
    let exited: number | null = null;
    proc.on("exit", (code) => (exited = code ?? -1));
    const deadline = Date.now() + timeoutMs;
    while (!existsSync(portFile) || readFileSync(portFile, "utf8").trim() === "") {
      if (exited !== null) {
        throw new Error(`server exited with ${exited}:\n${this.log()}`);
      }
      if (Date.now() > deadline) {
        throw new Error(`server did not start within ${timeoutMs} ms:\n${this.log()}`);
      }
      await sleep(30);
    }
    this.port = Number(readFileSync(portFile, "utf8").trim());
    this.address = `127.0.0.1:${this.port}`;
    this.token = readFileSync(tokenFile, "utf8").trim();
    await this.#waitServing(deadline, options.tls);
  }

  /** Poll grpc.health.v1.Health/Check until SERVING (status field 1 = 1). */
  async #waitServing(deadline: number, tls: ServerOptions["tls"]): Promise<void> {
    const client = tls
      ? new Client(this.address, credentials.createSsl(readFileSync(tls.caCert)), {
          "grpc.ssl_target_name_override": tls.serverNameOverride,
          "grpc.default_authority": tls.serverNameOverride,
        })
      : new Client(this.address, credentials.createInsecure());
    try {
      for (;;) {
        const serving = await new Promise<boolean>((resolveCheck) => {
          client.makeUnaryRequest(
            "/grpc.health.v1.Health/Check",
            (value: Buffer) => value,
            (value: Buffer) => value,
            Buffer.alloc(0),
            new Metadata(),
            { deadline: Date.now() + 2_000 },
            (error, reply) => resolveCheck(!error && reply !== undefined && reply.equals(Buffer.from([0x08, 0x01]))),
          );
        });
        if (serving) {
          return;
        }
        if (Date.now() > deadline) {
          throw new Error(`server not SERVING in time:\n${this.log()}`);
        }
        await sleep(50);
      }
    } finally {
      client.close();
    }
  }

  log(): string {
    const path = join(this.workdir, "server.log");
    return existsSync(path) ? readFileSync(path, "utf8") : "";
  }

  /** SIGTERM, then SIGKILL after `graceMs`; removes the work folder. */
  async stop(graceMs = 10_000): Promise<void> {
    const proc = this.#proc;
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.workdir, { recursive: true, force: true });
  }
}
