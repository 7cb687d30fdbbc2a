// Throwaway certificates for TLS tests, made with the openssl command line: a CA, a server
// certificate for 127.0.0.1 that shards also present as clients when they forward, a client
// certificate, and a client certificate from a CA nobody trusts.

import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestCertificates {
  readonly dir: string;
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly rogueCert: string;
  readonly rogueKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "ignore", "pipe"] });
}

function keyAndRequest(dir: string, name: string, cn: string): void {
  openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  openssl(dir, "req", "-new", "-key", `${name}.key`, "-subj", `/CN=${cn}`, "-out", `${name}.csr`);
}

function selfSignedCa(dir: string, name: string): void {
  openssl(dir, "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", `${name}.key`);
  openssl(
    dir,
    "req",
    "-x509",
    "-new",
    "-key",
    `${name}.key`,
    "-subj",
    `/CN=${name}`,
    "-days",
    "2",
    "-out",
    `${name}.pem`,
  );
}

function sign(dir: string, name: string, ca: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    `${ca}.pem`,
    "-CAkey",
    `${ca}.key`,
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.ext`,
    "-out",
    `${name}.pem`,
  );
}

export function makeCertificates(): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), "klstore-tls-"));
  selfSignedCa(dir, "ca");
  selfSignedCa(dir, "rogue-ca");
  keyAndRequest(dir, "server", "localhost");
  sign(dir, "server", "ca", "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  keyAndRequest(dir, "client", "klstore-test-client");
  sign(dir, "client", "ca", "extendedKeyUsage=clientAuth\n");
  keyAndRequest(dir, "rogue", "klstore-test-client");
  sign(dir, "rogue", "rogue-ca", "extendedKeyUsage=clientAuth\n");
  const at = (f: string) => join(dir, f);
  return {
    dir,
    ca: at("ca.pem"),
    serverCert: at("server.pem"),
    serverKey: at("server.key"),
    clientCert: at("client.pem"),
    clientKey: at("client.key"),
    rogueCert: at("rogue.pem"),
    rogueKey: at("rogue.key"),
  };
}
