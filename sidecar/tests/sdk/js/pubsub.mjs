// @dapr/dapr's DaprServer as a subscriber and invocation target and its DaprClient as
// publisher, invoker and output binding caller, against real Tandem sidecars, in HTTP mode or
// (TANDEM_PROTOCOL=grpc) gRPC mode: then the client speaks the gRPC API and DaprServer is a gRPC
// app behind a sidecar run with --app-protocol grpc. Started by sidecar/tests/sdk_clients; exits
// non-zero on the first failed check.
//
// Environment (set by the Rust test):
//   TANDEM_PROTOCOL         http (default) or grpc
//   TANDEM_SUB_HTTP_PORT    the subscriber's sidecar (its app port is TANDEM_SUB_APP_PORT);
//   TANDEM_SUB_GRPC_PORT    its gRPC port
//   TANDEM_SUB_APP_PORT     where DaprServer listens
//   TANDEM_PUB_HTTP_PORT    the publisher's sidecar, which has the `files` binding
//   TANDEM_PUB_GRPC_PORT    (bindings.localstorage) and shares the `pubsub` component
//   TANDEM_FILES_ROOT       that binding's rootPath

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { CommunicationProtocolEnum, DaprClient, DaprServer, HttpMethod, LogLevel } from "@dapr/dapr";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set (this script is run by sidecar/tests/sdk_clients.rs)`);
  }
  return value;
}

const grpc = (process.env.TANDEM_PROTOCOL || "http") === "grpc";
const protocol = grpc ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP;
const subDaprPort = required(grpc ? "TANDEM_SUB_GRPC_PORT" : "TANDEM_SUB_HTTP_PORT");
const subAppPort = required("TANDEM_SUB_APP_PORT");
const pubDaprPort = required(grpc ? "TANDEM_PUB_GRPC_PORT" : "TANDEM_PUB_HTTP_PORT");
const filesRoot = required("TANDEM_FILES_ROOT");

let step = "setup";
const check = async (name, body) => {
  step = name;
  await body();
  console.log(`ok - ${name}`);
};

const logger = { level: LogLevel.Error };
const received = [];
let waiters = [];
function notify() {
  waiters = waiters.filter((w) => !w());
}
function waitFor(predicate, ms, what) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    const probe = () => {
      if (predicate()) {
        clearTimeout(timer);
        resolve();
        return true;
      }
      return false;
    };
    if (!probe()) waiters.push(probe);
  });
}

const server = new DaprServer({
  serverHost: "127.0.0.1",
  serverPort: subAppPort,
  communicationProtocol: protocol,
  clientOptions: { daprHost: "127.0.0.1", daprPort: subDaprPort, communicationProtocol: protocol, logger },
  logger,
});
const publisher = new DaprClient({
  daprHost: "127.0.0.1",
  daprPort: pubDaprPort,
  communicationProtocol: protocol,
  logger,
});

try {
  await check("DaprServer subscribes and starts", async () => {
    await server.pubsub.subscribe("pubsub", "orders", async (data, headers) => {
      received.push({ data, headers });
      notify();
    });
    await server.pubsub.subscribe("pubsub", "raw-orders", async (data) => {
      received.push({ data, raw: true });
      notify();
    }, undefined, { rawPayload: "true" });
    // The SDK hands the body over as it came (a JSON string); parse it as its examples do.
    await server.invoker.listen("hello", async ({ body }) => {
      const parsed = typeof body === "string" ? JSON.parse(body) : body;
      return { greeting: `hello ${parsed.name}` };
    }, {
      method: HttpMethod.POST,
    });
    // Bulk subscribe, as the SDK's own e2e suite registers it: CloudEvents, and rawPayload.
    await server.pubsub.subscribeBulk("pubsub", "bulk-orders", async (data) => {
      received.push({ data, bulk: "ce" });
      notify();
    });
    await server.pubsub.subscribeBulk("pubsub", "bulk-raw", async (data) => {
      received.push({ data, bulk: "raw" });
      notify();
    }, { metadata: { rawPayload: true }, maxMessagesCount: 10, maxAwaitDurationMs: 200 });
    await server.start();
  });

  await check("DaprClient invokes a DaprServer method through both sidecars", async () => {
    const answer = await publisher.invoker.invoke("js-subscriber", "hello", HttpMethod.POST, { name: "tandem" });
    assert.deepEqual(answer, { greeting: "hello tandem" });
  });

  await check("the subscriber's sidecar lists the subscriptions", async () => {
    const deadline = Date.now() + 15000;
    for (;;) {
      // The SDK's gRPC metadata call leaves subscriptions out; the HTTP route has them.
      const md = grpc
        ? await (await fetch(`http://127.0.0.1:${required("TANDEM_SUB_HTTP_PORT")}/v1.0/metadata`)).json()
        : await server.client.metadata.get();
      const topics = (md.subscriptions || []).map((s) => s.topic).sort();
      if (["orders", "raw-orders", "bulk-orders", "bulk-raw"].every((t) => topics.includes(t))) break;
      assert.ok(Date.now() < deadline, `subscriptions never listed: ${JSON.stringify(md.subscriptions)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  await check("a JSON object published by DaprClient reaches the DaprServer handler", async () => {
    await publisher.pubsub.publish("pubsub", "orders", { orderId: 42, item: "tea" });
    await waitFor(() => received.some((r) => r.data && r.data.orderId === 42), 15000, "order 42");
    const got = received.find((r) => r.data && r.data.orderId === 42);
    assert.deepEqual(got.data, { orderId: 42, item: "tea" });
    // The handler's headers name the pubsub (HTTP headers, or gRPC metadata for a gRPC app).
    assert.equal(got.headers["pubsubname"], "pubsub", JSON.stringify(got.headers));
  });

  await check("a raw-payload subscription gets the body as published", async () => {
    await publisher.pubsub.publish("pubsub", "raw-orders", { orderId: 7 }, { metadata: { rawPayload: "true" } });
    await waitFor(() => received.some((r) => r.raw && r.data && r.data.orderId === 7), 15000, "raw order 7");
  });

  await check("bulk subscribe hands each CloudEvent entry's data to the handler, once", async () => {
    for (const n of [1, 2, 3]) {
      await publisher.pubsub.publish("pubsub", "bulk-orders", { message: `Message ${n}!` });
    }
    const bulk = () => received.filter((r) => r.bulk === "ce").map((r) => r.data.message).sort();
    await waitFor(() => bulk().length >= 3, 15000, "three bulk CloudEvents");
    await new Promise((r) => setTimeout(r, 500));
    assert.deepEqual(bulk(), ["Message 1!", "Message 2!", "Message 3!"]);
  });

  await check("bulk subscribe with rawPayload hands over the published bytes", async () => {
    for (const n of [1, 2]) {
      await publisher.pubsub.publish("pubsub", "bulk-raw", { message: `Raw ${n}!` }, { metadata: { rawPayload: "true" } });
    }
    const raw = () => received.filter((r) => r.bulk === "raw").map((r) => r.data.message).sort();
    await waitFor(() => raw().length >= 2, 15000, "two bulk raw payloads");
    assert.deepEqual(raw(), ["Raw 1!", "Raw 2!"]);
  });

  await check("DaprClient invokes an output binding (create, get, list, delete)", async () => {
    await publisher.binding.send("files", "create", { hello: "binding" }, { fileName: "greeting.json" });
    const onDisk = JSON.parse(fs.readFileSync(path.join(filesRoot, "greeting.json"), "utf8"));
    assert.deepEqual(onDisk, { hello: "binding" });
    // Over gRPC the SDK returns the whole InvokeBindingResponse ({data: bytes, metadata}).
    const payload = (answer) => (grpc ? JSON.parse(Buffer.from(answer.data).toString("utf8")) : answer);
    const got = payload(await publisher.binding.send("files", "get", undefined, { fileName: "greeting.json" }));
    assert.deepEqual(got, { hello: "binding" });
    const listed = payload(await publisher.binding.send("files", "list", undefined, {}));
    assert.ok(Array.isArray(listed) && listed.some((p) => String(p).endsWith("greeting.json")), JSON.stringify(listed));
    await publisher.binding.send("files", "delete", undefined, { fileName: "greeting.json" });
    assert.equal(fs.existsSync(path.join(filesRoot, "greeting.json")), false);
  });

  console.log(`all @dapr/dapr pub/sub and binding checks passed (${grpc ? "gRPC" : "HTTP"})`);
  // In gRPC mode DaprServer is a bare Node http2 server, whose close() waits for every open
  // session to end; the sidecar keeps its connection to the app open (as daprd does), so the
  // script exits without it.
  if (!grpc) await server.stop();
  process.exit(0);
} catch (err) {
  console.error(`not ok - ${step}: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
}
