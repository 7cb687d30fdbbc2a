// The deployment files stay consistent with each other and with klstore: the ConfigMap's
// config parses, its shard list matches the StatefulSet and its headless Service, the ports
// and probes line up, a writer actually starts from it, and the Dockerfile installs every
// workspace package the image runs.

import assert from "node:assert/strict";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { loadKlstoreConfig } from "@klstore/config";
import { parseAllDocuments } from "yaml";
import {
  ensureBucket,
  ROOT,
  S3_ACCESS_KEY,
  S3_BUCKET,
  S3_ENDPOINT,
  S3_SECRET_KEY,
  serve,
  stop,
} from "./support/processes.ts";

const DEPLOY = join(ROOT, "deploy/kubernetes");

/** Kubernetes manifests are untyped YAML, checked field by field below. */
type Manifest = any;

function manifests(): Manifest[] {
  return readdirSync(DEPLOY)
    .filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml")
    .flatMap((f) => parseAllDocuments(readFileSync(join(DEPLOY, f), "utf8")).map((d) => d.toJS()));
}

function find(all: Manifest[], kind: string, name: string): Manifest {
  const found = all.find((m) => m.kind === kind && m.metadata.name === name);
  assert.ok(found, `${kind}/${name}`);
  return found;
}

function configText(all: Manifest[]): string {
  return find(all, "ConfigMap", "klstore-config").data["klstore.ini"];
}

describe("deploy/kubernetes and the Dockerfile", () => {
  it("lists every manifest in the kustomization", () => {
    const listed = parseAllDocuments(readFileSync(join(DEPLOY, "kustomization.yaml"), "utf8"))[0]?.toJS().resources;
    const files = readdirSync(DEPLOY).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    assert.deepEqual([...listed].sort(), files.sort());
  });

  it("derives from the ConfigMap exactly the shards the StatefulSet runs, on the ports its pods expose", () => {
    const all = manifests();
    const statefulSet = find(all, "StatefulSet", "klstore-writer");
    const headless = find(all, "Service", statefulSet.spec.serviceName);
    assert.equal(headless.spec.clusterIP, "None");
    const pod = statefulSet.spec.template.spec.containers[0];
    const port = (name: string) => pod.ports.find((p: Manifest) => p.name === name).containerPort;
    const config = loadKlstoreConfig({
      file: writeTemp(configText(all)),
      env: {
        // What Kubernetes gives a pod when service links are on (every namespace, by default).
        ...serviceLinks(all),
        HOSTNAME: "klstore-writer-1",
        KLSTORE_S3_ACCESS_KEY: "k",
        KLSTORE_S3_SECRET_KEY: "s",
        KLSTORE_WRITER_FORWARDING_SECRET: "a-secret-of-32-characters-at-least",
      },
    });
    assert.ok(config.ignoredEnvironment.some((w) => w.startsWith("env KLSTORE_READER_SERVICE_HOST:")));
    for (const pods of [statefulSet, find(all, "Deployment", "klstore-reader")]) {
      assert.equal(pods.spec.template.spec.enableServiceLinks, false, `${pods.metadata.name}: no service links`);
    }
    assert.equal(config.writer.name, "klstore-writer-1");
    assert.equal(config.writer.forwardingSecret, "a-secret-of-32-characters-at-least");
    assert.deepEqual(
      config.writer.shards,
      Array.from({ length: statefulSet.spec.replicas }, (_, i) => ({
        name: `klstore-writer-${i}`,
        address: `klstore-writer-${i}.${headless.metadata.name}:${port("grpc")}`,
      })),
    );
    assert.equal(config.writer.listen, `0.0.0.0:${port("grpc")}`);
    assert.equal(config.writer.metricsListen, `0.0.0.0:${port("metrics")}`);
    assert.equal(pod.readinessProbe.grpc.port, port("grpc"));
    assert.equal(statefulSet.spec.template.metadata.annotations["prometheus.io/port"], String(port("metrics")));

    const reader = find(all, "Deployment", "klstore-reader").spec.template.spec.containers[0];
    const readerPort = (name: string) => reader.ports.find((p: Manifest) => p.name === name).containerPort;
    assert.equal(config.reader.listen, `0.0.0.0:${readerPort("grpc")}`);
    assert.equal(config.reader.metricsListen, `0.0.0.0:${readerPort("metrics")}`);
    assert.equal(reader.readinessProbe.grpc.port, readerPort("grpc"));
    assert.deepEqual(pod.args.slice(0, 2), ["serve", "writer"]);
    // Shards trust each other's forwarded calls only with the shared secret, kept in a Secret.
    const secretEnv = pod.env.find((e: Manifest) => e.name === "KLSTORE_WRITER_FORWARDING_SECRET");
    assert.equal(secretEnv?.valueFrom?.secretKeyRef?.name, "klstore-forwarding");
    assert.deepEqual(reader.args.slice(0, 2), ["serve", "reader"]);
  });

  it("starts a writer shard from the ConfigMap's config (S3 endpoint and address overridden)", {
    skip: !S3_ENDPOINT && "needs S3",
  }, async () => {
    await ensureBucket();
    const all = manifests();
    const file = writeTemp(configText(all));
    // Variables that look like settings and are not: service links, the test services' old port names.
    const env = { ...process.env, ...serviceLinks(all), KLSTORE_S3_PORT: "8333", KLSTORE_KAFKA_PORT: "9092" };
    const writer = await serve(
      "writer",
      file,
      [
        `s3.endpoint=${S3_ENDPOINT}`,
        `s3.bucket_name=${S3_BUCKET}`,
        "s3.path_style=true",
        `s3.access_key=${S3_ACCESS_KEY}`,
        `s3.secret_key=${S3_SECRET_KEY}`,
        "writer.name=klstore-writer-0",
        "writer.listen=127.0.0.1:0",
        "writer.metrics_listen=127.0.0.1:0",
      ],
      env,
    );
    try {
      const metrics = await (await fetch(`http://${writer.metrics}/metrics`)).text();
      assert.match(metrics, /klstore_writer_queue_items\{role="writer"\} 0/);
      const warnings = writer.stderr.filter((line) => /"level":40/.test(line)).join("\n");
      assert.match(warnings, /env KLSTORE_S3_PORT: \[s3\] has no setting port, so the variable is ignored/);
      assert.match(warnings, /env KLSTORE_READER_SERVICE_HOST: \[reader\] has no setting service_host/);
    } finally {
      assert.equal(await stop(writer), 0);
    }
  });

  it("installs every workspace package in the image", () => {
    const dockerfile = readFileSync(join(ROOT, "Dockerfile"), "utf8");
    for (const group of ["packages", "services"]) {
      for (const name of readdirSync(join(ROOT, group))) {
        assert.ok(dockerfile.includes(`COPY ${group}/${name}/package.json ${group}/${name}/`), `${group}/${name}`);
      }
    }
  });
});

/** The variables Kubernetes' service links derive from each Service with a cluster IP. */
function serviceLinks(all: Manifest[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const service of all.filter((m) => m.kind === "Service" && m.spec.clusterIP !== "None")) {
    const name = String(service.metadata.name).toUpperCase().replaceAll("-", "_");
    const ip = "10.96.0.7";
    for (const [i, { name: portName, port }] of (service.spec.ports as { name: string; port: number }[]).entries()) {
      if (i === 0) {
        env[`${name}_SERVICE_HOST`] = ip;
        env[`${name}_SERVICE_PORT`] = String(port);
        env[`${name}_PORT`] = `tcp://${ip}:${port}`;
      }
      env[`${name}_SERVICE_PORT_${portName.toUpperCase()}`] = String(port);
      env[`${name}_PORT_${port}_TCP`] = `tcp://${ip}:${port}`;
      env[`${name}_PORT_${port}_TCP_PROTO`] = "tcp";
      env[`${name}_PORT_${port}_TCP_PORT`] = String(port);
      env[`${name}_PORT_${port}_TCP_ADDR`] = ip;
    }
  }
  return env;
}

function writeTemp(text: string): string {
  const path = join(tmpdir(), `klstore-deploy-${process.pid}-${Date.now()}.ini`);
  writeFileSync(path, text);
  return path;
}
