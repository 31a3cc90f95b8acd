// Drives a server with the official TypeScript client (npm acp-sdk): prints what it saw as JSON.
// Usage: node client_check.cjs BASE_URL (with acp-sdk on NODE_PATH). CommonJS: the package's ESM
// build does not import under plain Node.
const { Client } = require("acp-sdk");

async function main(baseUrl) {
  const client = new Client({ baseUrl });
  const seen = {};
  await client.ping();
  seen.agents = (await client.agents()).map((agent) => agent.name).sort();
  const echo = await client.runSync("echo", "Hello");
  seen.sync = { status: echo.status, text: echo.output[0].parts[0].content };
  const types = [];
  let text = "";
  for await (const event of client.runStream("chunks", "200")) {
    types.push(event.type);
    if (event.type === "message.part") text += event.part.content;
  }
  seen.stream = { first: types[0], last: types[types.length - 1], parts: types.filter((t) => t === "message.part").length, text };
  let run = await client.runAsync("echo", "later");
  for (let i = 0; i < 200 && run.status !== "completed"; i++) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    run = await client.runStatus(run.runId ?? run.run_id);
  }
  seen.async = run.status;
  const waiting = await client.runSync("awaiter", "hi");
  const resumed = await client.runResumeSync(waiting.runId ?? waiting.run_id, {
    type: "message",
    message: { role: "user", parts: [{ content: "yes", content_type: "text/plain" }] },
  });
  seen.resume = { awaited: waiting.status, then: resumed.status, text: resumed.output[0].parts[0].content };
  const slow = await client.runAsync("slow-echo", ["a", "b", "c", "d"]);
  const cancelling = await client.runCancel(slow.runId ?? slow.run_id);
  seen.cancel = cancelling.status;
  try {
    await client.agent("nobody");
    seen.missing = "found";
  } catch (error) {
    seen.missing = error.error?.code ?? String(error);
  }
  return seen;
}

main(process.argv[2]).then(
  (seen) => console.log(JSON.stringify(seen)),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
