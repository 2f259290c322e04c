// The heartbeat demo page (index.html): an ES module, kept out of the page so
// the page's Content-Security-Policy can say script-src 'self'.
import { PulseSocket, defaultUrl, reconnectingText, tuningFromQuery } from "./txpulse.js";

const $ = (id) => document.getElementById(id);
const LOG_LENGTH = 12;
const url = defaultUrl("ws"); // relative: /ws next to this page
$("url").textContent = url;

// Tuning for demos and tests: ?silence=MS&backoff=MS&backoffMax=MS
const pulse = new PulseSocket({ url, ...tuningFromQuery() });
window.pulse = pulse; // for the console (and the browser test)

// Messages sent on the current connection and not answered yet, oldest
// first. The server answers in order, so a reply belongs to the oldest
// pending message with that text.
let pending = [];
const samples = [];

function log(text, kind) {
  const item = document.createElement("li");
  item.className = kind;
  const time = document.createElement("time");
  time.textContent = new Date().toLocaleTimeString([], { hour12: false });
  const body = document.createElement("span");
  body.textContent = text;
  item.append(time, body);
  $("log").prepend(item);
  while ($("log").children.length > LOG_LENGTH) $("log").lastElementChild.remove();
}

function beat() {
  const dot = $("pulse");
  dot.classList.remove("beat");
  void dot.offsetWidth; // restart the animation
  dot.classList.add("beat");
}

pulse.onstatus = (state, info) => {
  const status = $("status");
  status.dataset.state = state;
  if (state === "reconnecting") {
    status.textContent = reconnectingText(info);
  } else {
    status.textContent = state === "connecting" ? "connecting…" : state;
  }
  $("send").disabled = state !== "open";
  if (state !== "open") pending = [];
};

pulse.onopen = () => log("connected", "event up");

pulse.onclose = (code, reason, wasClean) => {
  if ($("status").dataset.state !== "open") return; // a failed attempt
  log(`connection lost (${code}${reason ? ": " + reason : ""})`, "event down");
};

pulse.onmessage = (data) => {
  if (typeof data !== "string") {
    log(`[${data.byteLength} bytes]`, "msg");
    return;
  }
  const prefix = "reply to ";
  const index = data.startsWith(prefix) ? pending.findIndex((p) => p.text === data.slice(prefix.length)) : -1;
  if (index < 0) {
    log(data, "msg");
    beat();
    return;
  }
  const ms = performance.now() - pending[index].sent;
  pending.splice(index, 1);
  samples.push(ms);
  if (samples.length > 20) samples.shift();
  $("reply").textContent = data;
  $("reply").classList.remove("muted");
  $("rtt").textContent = `${ms.toFixed(1)} ms`;
  $("rtt").dataset.ms = String(ms);
  $("rtt").classList.remove("muted");
  const min = Math.min(...samples);
  const avg = samples.reduce((a, b) => a + b, 0) / samples.length;
  $("rtt-stats").textContent =
    samples.length > 1 ? `(min ${min.toFixed(1)}, avg ${avg.toFixed(1)} over ${samples.length})` : "";
};

$("send-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("message").value;
  if (text === "") return;
  const sent = performance.now();
  if (pulse.send(text)) {
    pending.push({ text, sent });
    $("reply").textContent = "waiting…";
    $("reply").classList.add("muted");
    $("message").value = "";
  }
});
