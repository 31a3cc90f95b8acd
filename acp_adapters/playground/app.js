// The ACP playground: a client of the mount's public ACP API, nothing more.
//
// Rules this script keeps:
// * Every request goes to the mount by a URL relative to the page ({mount}/playground), so the page
//   works under any prefix, in every framework; the browser's cookies go with it, and the token typed
//   into the page, if any, as "Authorization: Bearer". The server's owner scoping and limits apply.
// * What an agent sends is shown as text (textContent), never parsed as HTML; links only for http(s).
// * No framework, no build step: plain modules of the browser.

const MOUNT = new URL(".", window.location.href);
const FINAL = new Set(["completed", "failed", "cancelled"]);
const POLL_MS = 300;

const $ = (id) => document.getElementById(id);

/** An element: h("p", {class: "x"}, "text", child). Attributes are set as attributes, never as HTML. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : String(child));
  }
  return element;
}

const json = (value) => JSON.stringify(value, null, 2);
const shortId = (id) => (id ? String(id).slice(0, 8) : "");
const roleName = (role) => (role === "user" ? "You" : String(role || "agent").replace(/^agent\//, ""));

/** A version 4 UUID (crypto.randomUUID needs a secure context; getRandomValues does not). */
function newUuid() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// The API --------------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    const code = body && typeof body === "object" && body.code ? body.code : "http_error";
    const message = body && typeof body === "object" && body.message ? body.message : `HTTP ${status}`;
    super(`HTTP ${status} · ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.data = body && typeof body === "object" ? body.data : undefined;
  }
}

/** Django's CSRF token (its default cookie), which a POST by a user logged in through Django's session
 * must carry; no other framework reads the header. */
function csrfToken() {
  const found = document.cookie.split(";").find((c) => c.trim().startsWith("csrftoken="));
  return found ? decodeURIComponent(found.trim().slice("csrftoken=".length)) : null;
}

function headers(extra = {}, method = "GET") {
  const all = { Accept: "application/json", ...extra };
  const token = $("token").value.trim();
  if (token) all.Authorization = `Bearer ${token}`;
  const csrf = method === "POST" ? csrfToken() : null;
  if (csrf) all["X-CSRFToken"] = csrf;
  return all;
}

/** Send a request to the mount (path relative to it: "runs", "agents/echo"); the answer, or an ApiError. */
async function request(method, path, body, options = {}) {
  const init = { method, headers: headers(options.headers, method), signal: options.signal, credentials: "same-origin" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(new URL(path, MOUNT), init);
  if (!response.ok) {
    let parsed = null;
    try {
      parsed = await response.json();
    } catch {
      parsed = null;
    }
    const error = new ApiError(response.status, parsed);
    if (response.status === 401) error.message += " (the Authorization section takes a token)";
    const retry = response.headers.get("retry-after");
    if (retry) error.message += ` (retry after ${retry} s)`;
    throw error;
  }
  return response;
}

async function api(method, path, body, options) {
  const response = await request(method, path, body, options);
  return response.json();
}

/** The events of a text/event-stream answer, parsed as JSON, as they arrive. */
async function* serverSentEvents(response) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    if (buffer.endsWith("\r")) continue; // a "\r\n" may be split between two chunks
    const lines = buffer.split(/\r\n|\r|\n/);
    buffer = lines.pop();
    for (const line of lines) {
      if (line === "") {
        if (data.length) yield JSON.parse(data.join("\n"));
        data = [];
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let text = colon < 0 ? "" : line.slice(colon + 1);
        if (text.startsWith(" ")) text = text.slice(1);
        if (field === "data") data.push(text);
      }
    }
  }
}

// Rendering parts ------------------------------------------------------------------------------------

function base64Bytes(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function safeLink(url, label) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol === "http:" || parsed.protocol === "https:") {
      return h("a", { href: parsed.href, target: "_blank", rel: "noopener noreferrer" }, label || parsed.href);
    }
  } catch {
    // not a URL: shown as text below
  }
  return h("code", {}, String(url));
}

function renderMetadata(metadata) {
  if (!metadata || typeof metadata !== "object") return null;
  if (metadata.kind === "trajectory") {
    return h(
      "div",
      { class: "meta trajectory" },
      h("span", { class: "tag" }, "trajectory"),
      metadata.message ? h("span", {}, ` ${metadata.message}`) : null,
      metadata.tool_name ? h("span", {}, " tool ", h("code", {}, metadata.tool_name)) : null,
      metadata.tool_input !== undefined && metadata.tool_input !== null
        ? h("details", {}, h("summary", {}, "tool input"), h("pre", { class: "code" }, json(metadata.tool_input)))
        : null,
      metadata.tool_output !== undefined && metadata.tool_output !== null
        ? h("details", {}, h("summary", {}, "tool output"), h("pre", { class: "code" }, json(metadata.tool_output)))
        : null,
    );
  }
  if (metadata.kind === "citation") {
    const range =
      Number.isInteger(metadata.start_index) && Number.isInteger(metadata.end_index)
        ? ` (characters ${metadata.start_index}–${metadata.end_index})`
        : "";
    return h(
      "div",
      { class: "meta citation" },
      h("span", { class: "tag" }, "citation"),
      " ",
      metadata.url ? safeLink(metadata.url, metadata.title || metadata.url) : metadata.title || "",
      range,
      metadata.description ? h("span", { class: "hint" }, ` ${metadata.description}`) : null,
    );
  }
  return h("div", { class: "meta" }, h("span", { class: "tag" }, "metadata"), h("pre", { class: "code" }, json(metadata)));
}

function downloadLink(part, bytes) {
  const blob = new Blob([bytes], { type: part.content_type || "application/octet-stream" });
  const name = part.name || "part";
  return h("a", { href: URL.createObjectURL(blob), download: name }, `Download ${name}`);
}

/** One message part: inline text, or a block (artifact, file, image, code, metadata). */
function renderPart(part) {
  const type = part.content_type || "text/plain";
  const isArtifact = typeof part.name === "string" && part.name !== "";
  const plainText = !isArtifact && type.startsWith("text/plain") && part.content_encoding !== "base64";
  const meta = renderMetadata(part.metadata);
  if (plainText && part.content_url === undefined && !meta) {
    return h("span", { class: "part part-text", "data-content-type": type }, part.content ?? "");
  }
  const block = h("div", { class: `part part-block${isArtifact ? " artifact" : ""}`, "data-content-type": type });
  const label = isArtifact ? `artifact ${part.name}` : type === "text/plain" ? null : type;
  if (label) block.append(h("div", { class: "part-label" }, label, isArtifact ? h("span", { class: "hint" }, ` · ${type}`) : null));
  if (part.content_url !== undefined && part.content_url !== null) {
    block.append(h("p", {}, "Content at ", safeLink(part.content_url)));
  } else if (part.content_encoding === "base64" && part.content) {
    if (type.startsWith("image/")) {
      block.append(h("img", { src: `data:${type};base64,${part.content}`, alt: part.name || "an image part" }));
    }
    try {
      const bytes = base64Bytes(part.content);
      block.append(h("p", { class: "hint" }, `${bytes.length} bytes, base64 `, downloadLink(part, bytes)));
    } catch {
      block.append(h("p", { class: "error" }, "content is not valid base64"));
    }
  } else if (part.content !== undefined && part.content !== null && part.content !== "") {
    block.append(h(type.startsWith("text/plain") ? "p" : "pre", { class: type.startsWith("text/plain") ? "text" : "code" }, part.content));
    if (isArtifact) block.append(downloadLink(part, new TextEncoder().encode(part.content)));
  }
  if (meta) block.append(meta);
  return block;
}

function renderMessage(message, extraClass = "") {
  const body = h("div", { class: "message-body" }, (message.parts || []).map(renderPart));
  return h(
    "li",
    { class: `message ${message.role === "user" ? "from-user" : "from-agent"} ${extraClass}`.trim() },
    h("div", { class: "role" }, roleName(message.role)),
    body,
  );
}

// Runs ------------------------------------------------------------------------------------------------

const announce = (text) => {
  $("announce").textContent = text;
};

/** The card of one run: its input, live output, status, await form, buttons and events. */
class RunCard {
  constructor(agent, mode, input, sessionId) {
    this.agent = agent;
    this.mode = mode;
    this.sessionId = sessionId;
    this.run = null;
    this.busy = false;
    this.streaming = false; // while a stream answer is read, the output comes from its events
    this.messages = []; // the output as the stream built it
    this.current = null; // the message being streamed: {message, element}
    this.statusEl = h("span", { class: "status", "data-status": "sending" }, "sending");
    this.idEl = h("code", { class: "run-id" }, "");
    this.output = h("ol", { class: "messages output", "aria-label": "Output" });
    this.awaitBox = h("div", { class: "await", hidden: true });
    this.errorEl = h("p", { class: "error", role: "alert", hidden: true });
    this.eventsBox = h("pre", { class: "code events", hidden: true, tabindex: "0", "aria-label": "Raw events" });
    this.logList = h("ol", { class: "log" });
    this.logCount = h("span", {}, "0");
    this.logBox = h("details", { class: "stream-log", hidden: true }, h("summary", {}, "Stream events (", this.logCount, ")"), this.logList);
    this.cancelButton = h("button", { type: "button", class: "cancel", disabled: true, onclick: () => this.cancel() }, "Cancel");
    this.eventsButton = h(
      "button",
      { type: "button", class: "raw-events", disabled: true, "aria-expanded": "false", onclick: () => this.toggleEvents() },
      "Raw events",
    );
    this.continueButton = h(
      "button",
      { type: "button", class: "continue", hidden: !sessionId, onclick: () => continueSession(this.sessionId) },
      "Continue this session",
    );
    this.element = h(
      "li",
      { class: "run" },
      h(
        "article",
        { "aria-label": `Run of ${agent}` },
        h(
          "header",
          { class: "run-head" },
          h("strong", {}, agent),
          h("span", { class: "hint" }, ` · ${mode}`),
          sessionId ? h("span", { class: "hint" }, " · session ", h("code", {}, shortId(sessionId))) : null,
          " ",
          this.statusEl,
          " ",
          this.idEl,
        ),
        h("ol", { class: "messages input", "aria-label": "Input" }, input.map((m) => renderMessage(m))),
        this.output,
        this.awaitBox,
        this.errorEl,
        h("div", { class: "row actions" }, this.cancelButton, this.eventsButton, this.continueButton),
        this.eventsBox,
        this.logBox,
      ),
    );
  }

  setBusy(busy) {
    this.busy = busy;
    this.element.classList.toggle("busy", busy);
    this.refreshButtons();
  }

  refreshButtons() {
    const status = this.run ? this.run.status : null;
    this.cancelButton.disabled = !this.run || FINAL.has(status) || status === "cancelling";
    this.eventsButton.disabled = !this.run;
  }

  setStatus(status) {
    this.statusEl.textContent = status;
    this.statusEl.dataset.status = status;
  }

  setRunId(runId) {
    this.idEl.textContent = runId;
    this.element.dataset.runId = runId;
  }

  /** A new state of the run (from a response, a poll or a run.* event). */
  update(run) {
    const previous = this.run ? this.run.status : null;
    // A final state is final: a late answer (the cancel request's "cancelling" after the stream's
    // run.cancelled, say) must not move the card back.
    if (this.run && this.run.run_id === run.run_id && FINAL.has(previous) && !FINAL.has(run.status)) return;
    this.run = run;
    this.setRunId(run.run_id);
    this.setStatus(run.status);
    if (run.status !== previous) announce(`Run of ${this.agent}: ${run.status}`);
    if (!this.streaming || run.status === "awaiting" || FINAL.has(run.status)) this.settle(run);
    if (run.status === "awaiting") this.showAwait(run.await_request);
    else this.awaitBox.hidden = true;
    if (run.error) this.showError(`${run.error.code}: ${run.error.message}`);
    this.refreshButtons();
  }

  /** The run's output as it says; the streamed rendering stays unless it differs. */
  settle(run) {
    const output = run.output || [];
    const partsOf = (messages) => JSON.stringify(messages.map((m) => m.parts));
    if (partsOf(this.messages) !== partsOf(output)) {
      this.messages = output.map((m) => ({ role: m.role, parts: [...(m.parts || [])] }));
      this.output.replaceChildren(...this.messages.map((m) => renderMessage(m)));
    }
    this.current = null;
  }

  showError(text) {
    this.errorEl.textContent = text;
    this.errorEl.hidden = false;
  }

  // the stream -------------------------------------------------------------------------------------
  event(event) {
    this.log(event);
    switch (event.type) {
      case "message.created":
        this.startMessage(event.message.role);
        break;
      case "message.part":
        if (!this.current) this.startMessage("agent");
        this.current.message.parts.push(event.part);
        this.current.element.querySelector(".message-body").append(renderPart(event.part));
        break;
      case "message.completed":
        if (!this.current) this.startMessage(event.message.role);
        this.current.message.parts = [...event.message.parts];
        this.current.element.replaceWith(renderMessage(event.message));
        this.current = null;
        break;
      case "generic":
        this.output.append(
          h("li", { class: "generic" }, h("span", { class: "tag" }, "generic event"), h("pre", { class: "code" }, json(event.generic))),
        );
        break;
      case "error":
        this.showError(`${event.error.code}: ${event.error.message}`);
        break;
      default:
        if (event.run) this.update(event.run);
    }
  }

  startMessage(role) {
    const message = { role, parts: [] };
    const element = renderMessage(message, "streaming");
    this.messages.push(message);
    this.output.append(element);
    this.current = { message, element };
  }

  log(event) {
    const summary = event.part
      ? JSON.stringify(event.part.content ?? event.part.content_url ?? "")
      : event.run
        ? event.run.status
        : event.error
          ? event.error.message
          : "";
    this.logList.append(h("li", { "data-type": event.type }, h("code", {}, event.type), " ", summary.slice(0, 200)));
    this.logCount.textContent = String(this.logList.children.length);
    this.logBox.hidden = false;
  }

  // actions ------------------------------------------------------------------------------------------
  async cancel() {
    if (!this.run) return;
    this.cancelButton.disabled = true;
    try {
      this.update(await api("POST", `runs/${this.run.run_id}/cancel`));
      if (!this.busy) await follow(this); // nobody is watching this run: poll to its end
    } catch (error) {
      this.showError(error.message);
      this.refreshButtons();
    }
  }

  async toggleEvents() {
    if (!this.eventsBox.hidden) {
      this.eventsBox.hidden = true;
      this.eventsButton.setAttribute("aria-expanded", "false");
      return;
    }
    try {
      const body = await api("GET", `runs/${this.run.run_id}/events`);
      this.eventsBox.textContent = body.events.map((event) => JSON.stringify(event)).join("\n");
      this.eventsBox.hidden = false;
      this.eventsButton.setAttribute("aria-expanded", "true");
    } catch (error) {
      this.showError(error.message);
    }
  }

  showAwait(awaitRequest) {
    const request = awaitRequest || {};
    const isMessage = request.type === "message";
    const fieldId = `resume-${this.run.run_id}`;
    const field = isMessage
      ? h("textarea", { id: fieldId, rows: "2", required: true })
      : h("textarea", { id: fieldId, rows: "4", class: "code", spellcheck: "false" }, json({ type: request.type || "" }));
    const form = h(
      "form",
      { class: "resume", novalidate: true },
      h("label", { for: fieldId }, isMessage ? "Your answer" : "The await_resume to send (JSON)"),
      field,
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Resume")),
    );
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      let resume;
      try {
        resume = isMessage
          ? { type: "message", message: { role: "user", parts: [{ content: field.value, content_type: "text/plain" }] } }
          : JSON.parse(field.value);
      } catch (error) {
        this.showError(`not JSON: ${error.message}`);
        return;
      }
      resumeRun(this, resume);
    });
    const asked = isMessage && request.message ? request.message : null;
    const children = [
      h("p", { class: "await-title" }, h("span", { class: "tag" }, "awaiting"), " The agent asks for an answer."),
      asked && asked.parts && asked.parts.length ? h("ol", { class: "messages" }, renderMessage(asked)) : null,
      h("details", {}, h("summary", {}, "Await request as JSON"), h("pre", { class: "code" }, json(request))),
      form,
    ];
    this.awaitBox.replaceChildren(...children.filter(Boolean));
    this.awaitBox.hidden = false;
    field.focus();
  }
}

/** Read a stream answer into ``card``. */
async function readStream(card, response) {
  const runId = response.headers.get("run-id");
  if (runId) card.setRunId(runId);
  card.streaming = true;
  try {
    for await (const event of serverSentEvents(response)) card.event(event);
  } finally {
    card.streaming = false;
  }
}

/** Poll the run until it awaits or ends. */
async function follow(card) {
  card.setBusy(true);
  try {
    while (card.run && !FINAL.has(card.run.status)) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      card.update(await api("GET", `runs/${card.run.run_id}`));
      if (card.run.status === "awaiting") break;
    }
  } finally {
    card.setBusy(false);
  }
}

/** Answer in ``card.mode``: the path and body of a create or a resume. */
async function drive(card, path, body) {
  card.setBusy(true);
  card.errorEl.hidden = true;
  try {
    if (card.mode === "stream") {
      await readStream(card, await request("POST", path, body, { headers: { Accept: "text/event-stream" } }));
    } else {
      card.update(await api("POST", path, body));
      if (card.mode === "async") await follow(card);
    }
  } catch (error) {
    card.showError(error.message);
    if (!card.run) card.setStatus("refused");
  } finally {
    card.setBusy(false);
  }
}

async function resumeRun(card, awaitResume) {
  card.awaitBox.hidden = true;
  const runId = card.run.run_id;
  await drive(card, `runs/${runId}`, { run_id: runId, await_resume: awaitResume, mode: card.mode });
}

// Agents ------------------------------------------------------------------------------------------------

let selectedAgent = null;

async function loadAgents() {
  const status = $("agents-status");
  status.textContent = "Loading…";
  try {
    const { agents } = await api("GET", "agents");
    const wanted = decodeURIComponent(window.location.hash.slice(1));
    $("agent-list").replaceChildren(
      ...agents.map((agent) =>
        h(
          "li",
          {},
          h(
            "label",
            { class: "agent" },
            h("input", { type: "radio", name: "agent", value: agent.name, onchange: () => selectAgent(agent.name) }),
            h("span", { class: "agent-name" }, agent.name),
            h("span", { class: "agent-description" }, agent.description || ""),
          ),
        ),
      ),
    );
    status.textContent = agents.length ? `${agents.length} agents` : "No agent is served here.";
    const first = agents.find((a) => a.name === wanted) || agents[0];
    if (first) {
      const radio = document.querySelector(`input[name="agent"][value="${CSS.escape(first.name)}"]`);
      radio.checked = true;
      radio.closest("li").scrollIntoView({ block: "nearest" });
      await selectAgent(first.name);
    }
  } catch (error) {
    status.textContent = error.message;
    if (error.status === 401) {
      $("auth").open = true;
      $("token").focus();
    }
  }
}

async function selectAgent(name) {
  selectedAgent = name;
  $("composer-agent").textContent = name;
  window.history.replaceState(null, "", `#${encodeURIComponent(name)}`);
  try {
    const manifest = await api("GET", `agents/${encodeURIComponent(name)}`);
    if (selectedAgent !== name) return;
    $("manifest-name").textContent = manifest.name;
    $("manifest-description").textContent = manifest.description || "(no description)";
    const facts = [
      ["Input content types", (manifest.input_content_types || []).join(", ")],
      ["Output content types", (manifest.output_content_types || []).join(", ")],
    ];
    if (manifest.status) facts.push(["Status", json(manifest.status)]);
    $("manifest-facts").replaceChildren(...facts.flatMap(([term, value]) => [h("dt", {}, term), h("dd", {}, value)]));
    $("manifest-json").textContent = json(manifest);
    $("manifest").hidden = false;
  } catch (error) {
    $("agents-status").textContent = error.message;
  }
}

// The composer ----------------------------------------------------------------------------------------------

let partCount = 0;

function addTextPart(text = "") {
  partCount += 1;
  const id = `part-${partCount}`;
  const item = h(
    "li",
    { class: "part-editor text-part" },
    h("label", { for: id }, "Message text"),
    h("textarea", { id, rows: "3", class: "part-content" }, text),
    h(
      "div",
      { class: "row" },
      h("label", { for: `${id}-type`, class: "small" }, "Content type"),
      h("input", { id: `${id}-type`, class: "part-type", type: "text", value: "text/plain", spellcheck: "false" }),
      h("button", { type: "button", class: "remove", onclick: () => removePart(item) }, "Remove part"),
    ),
  );
  $("parts").append(item);
  return item.querySelector("textarea");
}

function removePart(item) {
  const next = item.nextElementSibling || item.previousElementSibling;
  item.remove();
  (next ? next.querySelector("textarea, input, button") : $("add-text")).focus();
}

function addFilePart(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onerror = () => reject(reader.error);
    reader.onload = () => {
      partCount += 1;
      const id = `part-${partCount}`;
      const content = String(reader.result).split(",", 2)[1] || "";
      const item = h(
        "li",
        { class: "part-editor file-part" },
        h("span", { class: "file-name" }, file.name),
        h("span", { class: "hint" }, ` ${file.size} bytes, sent as base64`),
        h(
          "div",
          { class: "row" },
          h("label", { for: `${id}-type`, class: "small" }, "Content type"),
          h("input", {
            id: `${id}-type`,
            class: "part-type",
            type: "text",
            value: file.type || "application/octet-stream",
            spellcheck: "false",
          }),
          h("button", { type: "button", class: "remove", onclick: () => removePart(item) }, "Remove part"),
        ),
      );
      item.dataset.content = content;
      item.dataset.name = file.name;
      $("parts").append(item);
      resolve(item);
    };
    reader.readAsDataURL(file);
  });
}

function composedParts() {
  return [...$("parts").children].flatMap((item) => {
    const type = item.querySelector(".part-type").value.trim() || "text/plain";
    if (item.classList.contains("file-part")) {
      return [{ name: item.dataset.name, content: item.dataset.content, content_type: type, content_encoding: "base64" }];
    }
    const content = item.querySelector(".part-content").value;
    return content === "" ? [] : [{ content, content_type: type }];
  });
}

function selectedMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function continueSession(sessionId) {
  $("session-id").value = sessionId;
  $("use-session").checked = true;
  $("composer").scrollIntoView({ block: "start" });
  const first = $("parts").querySelector("textarea");
  (first || $("add-text")).focus();
}

async function send(event) {
  event.preventDefault();
  const problem = $("composer-error");
  problem.hidden = true;
  const parts = composedParts();
  if (!selectedAgent || parts.length === 0) {
    problem.textContent = selectedAgent ? "Write something or add a file first." : "Pick an agent first.";
    problem.hidden = false;
    return;
  }
  let sessionId = null;
  if ($("use-session").checked) {
    sessionId = $("session-id").value.trim() || newUuid();
    $("session-id").value = sessionId;
  }
  const input = [{ role: "user", parts }];
  const card = new RunCard(selectedAgent, selectedMode(), input, sessionId);
  $("runs").prepend(card.element);
  const body = { agent_name: selectedAgent, input, mode: card.mode };
  if (sessionId) body.session_id = sessionId;
  for (const item of [...$("parts").querySelectorAll(".file-part")]) item.remove();
  const text = $("parts").querySelector("textarea");
  if (text) text.value = "";
  await drive(card, "runs", body);
}

// Session history -----------------------------------------------------------------------------------------

async function showHistory() {
  const sessionId = $("session-id").value.trim();
  const status = $("history-status");
  const list = $("history-list");
  $("history").hidden = false;
  $("history-id").textContent = sessionId || "(none)";
  list.replaceChildren();
  if (!sessionId) {
    status.textContent = "Name a session first (Keep a session, then run).";
    return;
  }
  status.textContent = "Loading…";
  try {
    const session = await api("GET", `session/${encodeURIComponent(sessionId)}`);
    for (const url of session.history) {
      const target = new URL(url, MOUNT);
      if (target.origin !== window.location.origin) {
        list.append(h("li", { class: "message" }, "A message kept elsewhere: ", safeLink(url)));
        continue;
      }
      const response = await fetch(target, { headers: headers(), credentials: "same-origin" });
      list.append(response.ok ? renderMessage(await response.json()) : h("li", { class: "error" }, `${url}: HTTP ${response.status}`));
    }
    status.textContent = `${session.history.length} messages`;
  } catch (error) {
    status.textContent =
      error.status === 404 ? "No such session yet: a session is kept once a run that names it ends." : error.message;
  }
}

// Wiring ------------------------------------------------------------------------------------------------------

function start() {
  $("mount-url").textContent = MOUNT.pathname.replace(/\/$/, "") || "/";
  $("composer").addEventListener("submit", send);
  $("composer").addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.matches("textarea")) {
      event.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("add-text").addEventListener("click", () => addTextPart().focus());
  $("add-file").addEventListener("change", async (event) => {
    for (const file of [...event.target.files]) await addFilePart(file);
    event.target.value = "";
  });
  $("new-session").addEventListener("click", () => {
    $("session-id").value = newUuid();
    $("use-session").checked = true;
  });
  $("show-history").addEventListener("click", showHistory);
  $("close-history").addEventListener("click", () => {
    $("history").hidden = true;
    $("show-history").focus();
  });
  $("reload-agents").addEventListener("click", loadAgents);
  $("auth-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadAgents();
  });
  addTextPart();
  loadAgents();
}

start();
