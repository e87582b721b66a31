/** TLS with a CA certificate, mutual TLS with a client certificate, and a failed handshake not retried. */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";

import { CivicscoreError, isTlsHandshakeFailure, pb, status } from "../src/index.js";
import { withClient } from "./support/calls.js";
import { PYTHON, ServerProcess } from "./support/server.js";

/** A development CA (the Python SDK's devca) with a server certificate for localhost and one client. */
function makePki(dir: string, clients: string[]): void {
  const script =
    "import sys, pathlib\n" +
    "from civicscore_client.devca import write_dev_ca\n" +
    "write_dev_ca(pathlib.Path(sys.argv[1]), server_name='localhost', clients=sys.argv[2:])\n";
  execFileSync(PYTHON, ["-c", script, dir, ...clients]);
}

describe("TLS and mutual TLS", () => {
  let server: ServerProcess;
  let pki: string;
  let otherPki: string;
  let mtlsAddress: string;

  before(async () => {
    pki = mkdtempSync(join(tmpdir(), "civicscore-node-pki-"));
    otherPki = mkdtempSync(join(tmpdir(), "civicscore-node-pki-other-"));
    makePki(pki, ["node-client"]);
    makePki(otherPki, []);
    server = new ServerProcess();
    await server.start({
      extraArgs: ["--tls-cert", join(pki, "server.pem"), "--tls-key", join(pki, "server.key"),
        "--client-ca", join(pki, "ca.pem"), "--mtls-listen", "127.0.0.1:0",
        "--mtls-port-file", join(server.workdir, "mtls-port")],
      tls: { caCert: join(pki, "ca.pem"), serverNameOverride: "localhost" },
    });
    mtlsAddress = `127.0.0.1:${readFileSync(join(server.workdir, "mtls-port"), "utf8").trim()}`;
  });

  after(async () => {
    await server?.stop();
    rmSync(pki, { recursive: true, force: true });
    rmSync(otherPki, { recursive: true, force: true });
  });

  it("calls over TLS with the CA certificate and a token", async () => {
    await withClient({
      address: server.address, token: server.token, caCert: readFileSync(join(pki, "ca.pem"), "utf8"),
      serverNameOverride: "localhost",
    }, async (client) => {
      assert.equal(client.secure, true);
      const me = await client.identities.whoAmI({});
      assert.equal(me.identity?.identityId, "bootstrap-admin");
    });
  });

  it("does not retry a failed TLS handshake (a CA that did not sign the server's certificate)", async () => {
    await withClient({
      address: server.address, token: server.token, caCert: join(otherPki, "ca.pem"), serverNameOverride: "localhost",
    }, async (client) => {
      await assert.rejects(client.identities.whoAmI({}), (error: unknown) => {
        assert.ok(error instanceof CivicscoreError);
        assert.equal(error.code, status.UNAVAILABLE);
        assert.ok(isTlsHandshakeFailure(error), error.details);
        assert.equal(error.attempts, 1);
        return true;
      });
    });
  });

  it("authenticates with a client certificate (mutual TLS) and no token", async () => {
    await withClient({
      address: server.address, token: server.token, caCert: join(pki, "ca.pem"), serverNameOverride: "localhost",
    }, async (admin) => {
      await admin.identities.createIdentity({
        identity: { identityId: "node-client", displayName: "Ứng dụng Node", roles: [pb.identities.Role.ROLE_READER] },
      });
      await admin.identities.registerCertificate({ identity: "identities/node-client", certificateSubject: "CN=node-client" });
    });
    await withClient({
      address: mtlsAddress, caCert: join(pki, "ca.pem"), serverNameOverride: "localhost",
      clientCert: join(pki, "client-node-client.pem"), clientKey: join(pki, "client-node-client.key"),
    }, async (client) => {
      const me = await client.identities.whoAmI({});
      assert.equal(me.identity?.identityId, "node-client");
      assert.equal(me.credential?.certificateSubject, "CN=node-client");
    });
  });
});
