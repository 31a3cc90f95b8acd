// Drives an A2A deployment with the official JavaScript client (npm @a2a-js/sdk): prints what it saw as
// JSON, which tests/a2a/test_js_client.py checks.
// Usage: node client_check.cjs A2A_MOUNT_URL BINDING VERSION, with @a2a-js/sdk on NODE_PATH; BINDING is
// JSONRPC or HTTP+JSON, VERSION 1.0 or 0.3 (the SDK's compat transport: only the card's 0.3 interface is
// kept, as a 0.3 server's card would offer). CommonJS, as the acp-sdk check (NODE_PATH is not read for
// ES modules). Requests are made with the SDK's fromJSON, as TypeScript code must give every field (a
// missing enum would be sent as "UNRECOGNIZED").
const { DefaultAgentCardResolver, ClientFactory, ClientFactoryOptions, JsonRpcTransportFactory, RestTransportFactory } =
  require("@a2a-js/sdk/client");
const { CancelTaskRequest, GetTaskRequest, ListTasksRequest, Message, SubscribeToTaskRequest, TaskState } =
  require("@a2a-js/sdk");
const errors = require("@a2a-js/sdk/errors");

const [mount, binding, version] = process.argv.slice(2);
const legacyCompat = { enabled: version === "0.3" };
const SEMANTIC = [
  "TaskNotFoundError",
  "TaskNotCancelableError",
  "UnsupportedOperationError",
  "PushNotificationNotSupportedError",
  "VersionNotSupportedError",
  "RequestMalformedError",
];

const MISSING = "5d0c4a52-0000-4000-8000-000000000000";

let counter = 0;
function user(text, extra = {}) {
  counter += 1;
  return Message.fromJSON({ messageId: `js-${process.pid}-${counter}`, role: "ROLE_USER", parts: [{ text }], ...extra });
}

function state(task) {
  return TaskState[task.status.state];
}

function textOf(task) {
  return (task.artifacts ?? [])
    .flatMap((artifact) => artifact.parts)
    .filter((part) => part.content?.$case === "text")
    .map((part) => part.content.value)
    .join("");
}

function errorName(error) {
  for (const name of SEMANTIC) if (error instanceof errors[name]) return name;
  return `unexpected ${error?.constructor?.name}: ${error?.message}`;
}

async function refused(call) {
  try {
    await call();
    return "accepted";
  } catch (error) {
    return errorName(error);
  }
}

async function clientFor(agent) {
  // The card is under the agent's URL: with a trailing slash, as the resolver joins its path to it.
  const resolver = new DefaultAgentCardResolver({ legacyCompat });
  const card = await resolver.resolve(`${mount}/${agent}/`);
  const served = card.supportedInterfaces.map((i) => [i.protocolBinding, i.protocolVersion, i.url]);
  card.supportedInterfaces = card.supportedInterfaces.filter((i) => i.protocolVersion === version);
  const factory = new ClientFactory(
    ClientFactoryOptions.createFrom(ClientFactoryOptions.default, {
      transports: [new JsonRpcTransportFactory({ legacyCompat }), new RestTransportFactory({ legacyCompat })],
      preferredTransports: [binding],
      cardResolver: resolver,
    }),
  );
  return { card, served, client: await factory.createFromAgentCard(card) };
}

async function send(client, message, configuration = {}) {
  return client.sendMessage({ message, configuration });
}

async function stream(client, message) {
  const items = [];
  for await (const item of client.sendMessageStream({ message })) items.push(item.payload);
  return items;
}

async function poll(client, id) {
  for (let i = 0; i < 400; i++) {
    const task = await client.getTask(GetTaskRequest.fromJSON({ id }));
    if (["TASK_STATE_COMPLETED", "TASK_STATE_FAILED", "TASK_STATE_CANCELED"].includes(state(task))) return task;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`task ${id} did not end`);
}

async function main() {
  const seen = {};
  const { card, served, client: echo } = await clientFor("echo");
  seen.card = {
    name: card.name,
    description: card.description,
    streaming: card.capabilities.streaming,
    push: card.capabilities.pushNotifications,
    interfaces: served,
    skills: card.skills.map((skill) => skill.id),
  };
  seen.client = [echo.transport.protocolName, echo.protocolVersion];

  const blocking = await send(echo, user("hello"));
  seen.blocking = { state: state(blocking), text: textOf(blocking), history: blocking.history.length };

  const { client: slow } = await clientFor("slow-echo");
  const later = await send(slow, user("later"), { returnImmediately: true });
  const ended = await poll(slow, later.id);
  seen.nonBlocking = { first: state(later), then: state(ended), text: textOf(ended) };

  const { client: chunks } = await clientFor("chunks");
  const items = await stream(chunks, user("5"));
  const updates = items.filter((item) => item.$case === "artifactUpdate").map((item) => item.value);
  const streamed = items[0].value;
  const got = await chunks.getTask(GetTaskRequest.fromJSON({ id: streamed.id }));
  seen.stream = {
    first: [items[0].$case, state(streamed)],
    states: items.filter((item) => item.$case === "statusUpdate").map((item) => TaskState[item.value.status.state]),
    text: updates.map((update) => update.artifact.parts[0].content.value).join(""),
    appends: updates.map((update) => update.append),
    got: [state(got), textOf(got)],
  };

  const followed = await send(slow, user("x y"), { returnImmediately: true });
  const events = [];
  for await (const item of slow.resubscribeTask(SubscribeToTaskRequest.fromJSON({ id: followed.id }))) {
    events.push(item.payload);
  }
  const last = events[events.length - 1];
  seen.subscribe = {
    first: [events[0].$case, events[0].value.id === followed.id],
    last: [last.$case, TaskState[last.value.status?.state]],
  };

  const running = await send(slow, user("a b c d"), { returnImmediately: true });
  const cancelled = await slow.cancelTask(CancelTaskRequest.fromJSON({ id: running.id }));
  seen.cancel = {
    state: state(cancelled),
    again: await refused(() => slow.cancelTask(CancelTaskRequest.fromJSON({ id: running.id }))),
  };

  const { client: awaiter } = await clientFor("awaiter");
  const asking = await send(awaiter, user("start"));
  const answered = await send(awaiter, user("42", { taskId: asking.id, contextId: asking.contextId }));
  seen.inputRequired = {
    asked: state(asking),
    answered: state(answered),
    sameTask: answered.id === asking.id,
    text: textOf(answered),
    again: await refused(() => send(awaiter, user("again", { taskId: asking.id }))),
  };

  const { client: sessioner } = await clientFor("sessioner");
  const first = await send(sessioner, user("a"));
  const second = await send(sessioner, user("b", { contextId: first.contextId }));
  seen.contexts = {
    firstIsItsContext: textOf(first) === first.contextId,
    sameContext: second.contextId === first.contextId && textOf(second) === first.contextId,
    twoTasks: second.id !== first.id,
  };
  if (version === "1.0") {
    const listed = await sessioner.listTasks(ListTasksRequest.fromJSON({ contextId: first.contextId, pageSize: 10 }));
    seen.list = {
      ids: listed.tasks.map((task) => task.id),
      expected: [second.id, first.id],
      totalSize: listed.totalSize,
      nextPageToken: listed.nextPageToken,
    };
  }

  seen.errors = {
    unknownTask: await refused(() => echo.getTask(GetTaskRequest.fromJSON({ id: MISSING }))),
    cancelUnknown: await refused(() => echo.cancelTask(CancelTaskRequest.fromJSON({ id: MISSING }))),
  };
  return seen;
}

main().then(
  (seen) => console.log(JSON.stringify(seen)),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
