// The official Dapr JavaScript SDK (@dapr/dapr, HTTP mode) used as an app would use it, against a
// real Tandem sidecar. Started by sidecar/tests/sdk_clients.rs; exits non-zero on the first failed
// check.
//
// Environment (set by the Rust test):
//   DAPR_HTTP_PORT          the caller's sidecar (read by the SDK itself)
//   TANDEM_APP_ID           that sidecar's app id
//   TANDEM_CALLEE_APP_ID    the app id of a second sidecar, whose app port is...
//   TANDEM_CALLEE_PORT      ...where this script serves the callee app (a plain node:http server)
//   TANDEM_SECRET_NAME / TANDEM_SECRET_VALUE   a variable set on the sidecar, read through the
//                           `envsecrets` store (secretstores.local.env)
// The sidecar has `statestore` (state.in-memory) and `envsecrets` (secretstores.local.env).

import assert from "node:assert/strict";
import http from "node:http";
import { CommunicationProtocolEnum, DaprClient, HttpMethod, LogLevel } from "@dapr/dapr";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set (this script is run by sidecar/tests/sdk_clients.rs)`);
  }
  return value;
}

const appId = required("TANDEM_APP_ID");
const calleeAppId = required("TANDEM_CALLEE_APP_ID");
const calleePort = Number(required("TANDEM_CALLEE_PORT"));
const secretName = required("TANDEM_SECRET_NAME");
const secretValue = required("TANDEM_SECRET_VALUE");
required("DAPR_HTTP_PORT");
const STORE = "statestore";
const SECRETS = "envsecrets";

let step = "setup";
const check = async (name, body) => {
  step = name;
  await body();
  console.log(`ok - ${name}`);
};

// The SDK reports a failed call as an Error whose message is JSON {error, error_msg, status}.
function failure(err) {
  try {
    const parsed = JSON.parse(err.message);
    let body = parsed.error_msg;
    try {
      body = JSON.parse(body);
    } catch {
      // plain text body
    }
    return { status: parsed.status, body };
  } catch {
    return { status: undefined, body: err.message };
  }
}

async function rejectsWith(promise, status, errorCode) {
  let err;
  try {
    await promise;
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected the call to fail with HTTP ${status}, but it succeeded`);
  const { status: got, body } = failure(err);
  assert.equal(got, status, `expected HTTP ${status}, got ${got}: ${JSON.stringify(body)}`);
  if (errorCode) {
    assert.equal(body?.errorCode, errorCode, `expected errorCode ${errorCode} in ${JSON.stringify(body)}`);
  }
  return body;
}

// state.save/delete do not throw: they resolve to {} or {error}.
function statusOf(result) {
  assert.ok(result?.error, `expected an error result, got ${JSON.stringify(result)}`);
  return failure(result.error);
}

// Polls `probe` until it returns true, failing after `ms`.
async function eventually(what, probe, ms = 10_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await probe()) return;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// --- The callee app, behind the second sidecar: answers with what it received. ---
const seen = [];
const callee = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    // The sidecar asks every app for its pub/sub subscriptions and actor types; this one has none.
    if (req.url === "/dapr/subscribe" || req.url === "/dapr/config") {
      res.writeHead(404);
      res.end();
      return;
    }
    const record = { method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString("utf8") };
    seen.push(record);
    if (req.url.startsWith("/text")) {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("plain text reply");
    } else if (req.url.startsWith("/fail")) {
      res.writeHead(503, { "content-type": "application/json" });
      res.end(JSON.stringify({ reason: "callee says no" }));
    } else {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(record));
    }
  });
});
await new Promise((resolve, reject) => {
  callee.once("error", reject);
  callee.listen(calleePort, "127.0.0.1", resolve);
});

const client = new DaprClient({
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  logger: { level: LogLevel.Error },
});

try {
  await check("client.start() finds the sidecar (GET /v1.0/metadata)", async () => {
    await client.start();
  });

  await check("health.isHealthy()", async () => {
    assert.equal(await client.health.isHealthy(), true);
  });

  await check("metadata.get(): id and components", async () => {
    const md = await client.metadata.get();
    assert.equal(md.id, appId);
    assert.ok(Array.isArray(md.components), `components: ${JSON.stringify(md)}`);
    const states = md.components.filter((c) => c.name === STORE);
    assert.equal(states.length, 1, `one ${STORE} expected in ${JSON.stringify(md.components)}`);
    const [state] = states;
    assert.equal(state.type, "state.in-memory");
    assert.equal(state.version, "v1");
    for (const cap of ["ETAG", "TRANSACTIONAL"]) {
      assert.ok(state.capabilities?.includes(cap), `${STORE} lacks ${cap}: ${JSON.stringify(state)}`);
    }
    const secrets = md.components.find((c) => c.name === SECRETS);
    assert.ok(secrets, `no ${SECRETS} in ${JSON.stringify(md.components)}`);
    assert.equal(secrets.type, "secretstores.local.env");
  });

  await check("metadata.set() then extended", async () => {
    assert.equal(await client.metadata.set("testKey", "testValue"), true);
    assert.equal(await client.metadata.set("other-key", "with spaces and ünïcode"), true);
    const md = await client.metadata.get();
    assert.equal(md.extended?.testKey, "testValue", `extended: ${JSON.stringify(md.extended)}`);
    assert.equal(md.extended?.["other-key"], "with spaces and ünïcode");
  });

  await check("state.save() and state.get() of JSON, string and number values", async () => {
    const saved = await client.state.save(STORE, [
      { key: "k1", value: { a: 1, nested: { list: [1, "two", null], ok: true } } },
      { key: "k2", value: "plain string" },
      { key: "k3", value: 42 },
    ]);
    assert.deepEqual(saved, {});
    assert.deepEqual(await client.state.get(STORE, "k1"), { a: 1, nested: { list: [1, "two", null], ok: true } });
    assert.equal(await client.state.get(STORE, "k2"), "plain string");
    assert.equal(await client.state.get(STORE, "k3"), 42);
    // A missing key is a 204 with no body, which the SDK returns as "".
    assert.equal(await client.state.get(STORE, "no-such-key"), "");
  });

  await check("state.getBulk() with a missing key", async () => {
    const items = await client.state.getBulk(STORE, ["k1", "k2", "no-such-key"]);
    assert.ok(Array.isArray(items), `getBulk: ${JSON.stringify(items)}`);
    assert.equal(items.length, 3);
    const byKey = Object.fromEntries(items.map((i) => [i.key, i]));
    assert.deepEqual(byKey.k1.data, { a: 1, nested: { list: [1, "two", null], ok: true } });
    assert.equal(byKey.k2.data, "plain string");
    for (const k of ["k1", "k2"]) {
      assert.equal(typeof byKey[k].etag, "string", `${k} has no etag: ${JSON.stringify(byKey[k])}`);
      assert.notEqual(byKey[k].etag, "");
    }
    assert.ok(byKey["no-such-key"], `no item for the missing key: ${JSON.stringify(items)}`);
    assert.equal(byKey["no-such-key"].data, undefined);
  });

  const etagOf = async (key) => {
    const [item] = await client.state.getBulk(STORE, [key]);
    assert.equal(item?.key, key);
    return item.etag;
  };

  // The SDK logs the expected 409s of the next two checks as errors on stderr.
  await check("state.save() with etags: current wins, stale gets 409", async () => {
    const first = await etagOf("k2");
    assert.deepEqual(await client.state.save(STORE, [{ key: "k2", value: "second", etag: first }]), {});
    assert.equal(await client.state.get(STORE, "k2"), "second");
    const second = await etagOf("k2");
    assert.notEqual(second, first, "the etag must change on write");
    const stale = statusOf(await client.state.save(STORE, [{ key: "k2", value: "lost", etag: first }]));
    assert.equal(stale.status, 409, `stale etag: ${JSON.stringify(stale)}`);
    assert.equal(stale.body?.errorCode, "ERR_STATE_SAVE");
    assert.equal(await client.state.get(STORE, "k2"), "second");
  });

  await check("state.save() with metadata ttlInSeconds expires the key", async () => {
    assert.deepEqual(
      await client.state.save(STORE, [{ key: "short-lived", value: "soon gone", metadata: { ttlInSeconds: "1" } }]),
      {},
    );
    assert.equal(await client.state.get(STORE, "short-lived"), "soon gone");
    await eventually("short-lived to expire", async () => (await client.state.get(STORE, "short-lived")) === "");
  });

  await check("state.delete() with etags", async () => {
    const current = await etagOf("k3");
    assert.deepEqual(await client.state.save(STORE, [{ key: "k3", value: 43 }]), {});
    const stale = statusOf(await client.state.delete(STORE, "k3", { etag: current }));
    assert.equal(stale.status, 409, `stale If-Match: ${JSON.stringify(stale)}`);
    assert.equal(stale.body?.errorCode, "ERR_STATE_DELETE");
    assert.equal(await client.state.get(STORE, "k3"), 43);
    assert.deepEqual(await client.state.delete(STORE, "k3", { etag: await etagOf("k3") }), {});
    assert.equal(await client.state.get(STORE, "k3"), "");
    // Deleting without an etag, and deleting what is not there, both succeed.
    assert.deepEqual(await client.state.delete(STORE, "k2"), {});
    assert.equal(await client.state.get(STORE, "k2"), "");
    assert.deepEqual(await client.state.delete(STORE, "never-there"), {});
  });

  await check("state.transaction() with etags and metadata", async () => {
    assert.deepEqual(await client.state.save(STORE, [{ key: "t-del", value: "to delete" }]), {});
    const k1 = await etagOf("k1");
    await client.state.transaction(
      STORE,
      [
        { operation: "upsert", request: { key: "t1", value: { from: "transaction" } } },
        { operation: "upsert", request: { key: "k1", value: "k1 replaced", etag: k1 } },
        { operation: "upsert", request: { key: "t-ttl", value: "expiring", metadata: { ttlInSeconds: "1" } } },
        { operation: "delete", request: { key: "t-del" } },
      ],
      { requestMetadataKey: "passed" },
    );
    assert.deepEqual(await client.state.get(STORE, "t1"), { from: "transaction" });
    assert.equal(await client.state.get(STORE, "k1"), "k1 replaced");
    assert.equal(await client.state.get(STORE, "t-del"), "");
    assert.equal(await client.state.get(STORE, "t-ttl"), "expiring");

    // A stale etag fails the whole transaction (500 ERR_STATE_TRANSACTION) and applies nothing.
    await rejectsWith(
      client.state.transaction(STORE, [
        { operation: "upsert", request: { key: "t2", value: "must not exist" } },
        { operation: "upsert", request: { key: "k1", value: "must not win", etag: k1 } },
      ]),
      500,
      "ERR_STATE_TRANSACTION",
    );
    assert.equal(await client.state.get(STORE, "t2"), "");
    assert.equal(await client.state.get(STORE, "k1"), "k1 replaced");

    await eventually("t-ttl to expire", async () => (await client.state.get(STORE, "t-ttl")) === "");
    assert.deepEqual(await client.state.get(STORE, "t1"), { from: "transaction" });
  });

  await check("state on an unknown store: 400 ERR_STATE_STORE_NOT_FOUND", async () => {
    await rejectsWith(client.state.get("no-such-store", "k"), 400, "ERR_STATE_STORE_NOT_FOUND");
  });

  await check("secret.get() and secret.getBulk()", async () => {
    assert.deepEqual(await client.secret.get(SECRETS, secretName), { [secretName]: secretValue });
    const bulk = await client.secret.getBulk(SECRETS);
    assert.deepEqual(bulk[secretName], { [secretName]: secretValue });
    // An unknown secret store really is a 401 in Dapr.
    await rejectsWith(client.secret.get("no-such-secrets", secretName), 401, "ERR_SECRET_STORE_NOT_FOUND");
  });

  await check("invoker.invoke() POST with JSON, query and headers through two sidecars", async () => {
    const reply = await client.invoker.invoke(calleeAppId, "orders/42?x=1&y=two", HttpMethod.POST, { hello: "world" }, {
      headers: { "x-custom": "kept" },
    });
    assert.equal(reply.method, "POST");
    assert.equal(reply.url, "/orders/42?x=1&y=two");
    assert.deepEqual(JSON.parse(reply.body), { hello: "world" });
    assert.match(reply.headers["content-type"], /^application\/json/);
    assert.equal(reply.headers["x-custom"], "kept");
    assert.equal(reply.headers["dapr-caller-app-id"], appId);
    assert.equal(reply.headers["dapr-callee-app-id"], calleeAppId);
    assert.equal(reply.headers["dapr-api-token"], undefined);
  });

  await check("invoker.invoke() GET, PUT text, DELETE", async () => {
    const get = await client.invoker.invoke(calleeAppId, "items", HttpMethod.GET);
    assert.equal(get.method, "GET");
    assert.equal(get.url, "/items");
    assert.equal(get.body, "");
    const put = await client.invoker.invoke(calleeAppId, "items/7", HttpMethod.PUT, "some text");
    assert.equal(put.method, "PUT");
    assert.equal(put.body, "some text");
    assert.match(put.headers["content-type"], /^text\/plain/);
    const del = await client.invoker.invoke(calleeAppId, "items/7", HttpMethod.DELETE);
    assert.equal(del.method, "DELETE");
    assert.equal(del.url, "/items/7");
  });

  await check("invoker.invoke(): a text reply, and the app's error status passed through", async () => {
    assert.equal(await client.invoker.invoke(calleeAppId, "text", HttpMethod.GET), "plain text reply");
    const body = await rejectsWith(client.invoker.invoke(calleeAppId, "fail", HttpMethod.POST, { n: 1 }), 503);
    assert.deepEqual(body, { reason: "callee says no" });
  });

  await check("invoker.invoke() to an unknown app: 500 ERR_DIRECT_INVOKE", async () => {
    await rejectsWith(client.invoker.invoke("no-such-app", "x", HttpMethod.GET), 500, "ERR_DIRECT_INVOKE");
  });

  await check("the callee saw every invocation once", async () => {
    assert.deepEqual(
      seen.map((r) => `${r.method} ${r.url}`),
      ["POST /orders/42?x=1&y=two", "GET /items", "PUT /items/7", "DELETE /items/7", "GET /text", "POST /fail"],
    );
  });

  console.log("all @dapr/dapr checks passed");
} catch (err) {
  console.error(`FAILED: ${step}`);
  console.error(err?.stack ?? err);
  process.exitCode = 1;
} finally {
  await client.stop();
  callee.close();
  callee.closeAllConnections?.();
}
