// @dapr/dapr's actor runtime in HTTP mode: `node actors.mjs host` runs a DaprServer hosting the
// CounterActor type behind one sidecar; `node actors.mjs client` drives it with ActorProxyBuilder
// through another sidecar and exits non-zero on the first failed check. Started by
// sidecar/tests/sdk_clients/actors.rs.
//
// Environment (set by the Rust test):
//   APP_PORT          host: where DaprServer listens
//   DAPR_HTTP_PORT    host: its sidecar; client: the caller's sidecar

import assert from "node:assert/strict";
import { AbstractActor, ActorId, ActorProxyBuilder, CommunicationProtocolEnum, DaprClient, DaprServer, LogLevel } from "@dapr/dapr";

function required(name) {
  const value = process.env[name];
  if (!value) {
    throw new Error(`environment variable ${name} is not set (this script is run by sidecar/tests/sdk_clients)`);
  }
  return value;
}

// The same class on both sides: the host runs it, the client's proxy takes its method names.
class CounterActor extends AbstractActor {
  async add(amount) {
    const [found, current] = await this.getStateManager().tryGetState("count");
    const next = (found ? current : 0) + amount;
    await this.getStateManager().setState("count", next);
    return next;
  }

  async count() {
    const [found, current] = await this.getStateManager().tryGetState("count");
    return found ? current : 0;
  }

  async greet(who, punctuation) {
    return `hello ${who.name}${punctuation} from ${this.getActorId().getId()}`;
  }
}

const logger = { level: LogLevel.Error };
const daprPort = required("DAPR_HTTP_PORT");

if (process.argv[2] === "host") {
  const server = new DaprServer({
    serverHost: "127.0.0.1",
    serverPort: required("APP_PORT"),
    communicationProtocol: CommunicationProtocolEnum.HTTP,
    clientOptions: { daprHost: "127.0.0.1", daprPort, logger },
    logger,
  });
  await server.actor.init();
  await server.actor.registerActor(CounterActor);
  await server.start();
  console.log("actor host started");
} else {
  let step = "setup";
  const check = async (name, body) => {
    step = name;
    await body();
    console.log(`ok - ${name}`);
  };
  try {
    const client = new DaprClient({ daprHost: "127.0.0.1", daprPort, logger });
    const builder = new ActorProxyBuilder(CounterActor, client);
    const first = builder.build(new ActorId("counter-1"));
    const second = builder.build(new ActorId("counter-2"));

    await check("a proxied method with an argument runs on the host and keeps actor state", async () => {
      assert.equal(await first.add(2), 2);
      assert.equal(await first.add(5), 7);
      assert.equal(await first.count(), 7);
    });
    await check("each actor id has its own state", async () => {
      assert.equal(await second.count(), 0);
      assert.equal(await second.add(1), 1);
      assert.equal(await first.count(), 7);
    });
    await check("several arguments (an object and a string) reach the method", async () => {
      assert.equal(await first.greet({ name: "tandem" }, "!"), "hello tandem! from counter-1");
    });
    console.log("all @dapr/dapr actor checks passed");
    process.exit(0);
  } catch (e) {
    console.error(`not ok - ${step}: ${e && e.stack ? e.stack : e}`);
    process.exit(1);
  }
}
