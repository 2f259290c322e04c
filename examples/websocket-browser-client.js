// The browser side of the WebSocket demo (loaded by index.html).
//
// "connect" opens a WebSocket to websocket-server.rpy on the host that served
// this page (ws:// for an http:// page, wss:// for an https:// one); each
// message that arrives is appended to the list (newest last); the text box and
// "send" send a text message; the status line follows the socket's state.
//
// Plain browser JavaScript: no build step, no dependencies. Received text goes
// into the page with textContent only, never as HTML.

const SERVER_PATH = "websocket-server.rpy";

const ui = {
  connect: document.getElementById("connect"),
  disconnect: document.getElementById("disconnect"),
  status: document.getElementById("status"),
  form: document.getElementById("send-form"),
  text: document.getElementById("text"),
  send: document.getElementById("send"),
  messages: document.getElementById("messages"),
};

let socket = null;

// The WebSocket URL for this page: same host and port, and the scheme that
// matches the page's (a page served over TLS must use wss://).
function socketUrl(pageUrl) {
  const url = new URL("/" + SERVER_PATH, pageUrl);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function setStatus(state, text) {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
  const open = state === "open";
  const idle = state === "closed" || state === "disconnected";
  ui.connect.disabled = !idle;
  ui.disconnect.disabled = !open;
  ui.text.disabled = !open;
  ui.send.disabled = !open;
}

// Append one line to the list; `kind` is a CSS class (received, sent, event).
function record(kind, text) {
  const item = document.createElement("li");
  item.className = kind;
  item.textContent = text;
  ui.messages.append(item);
  if (typeof item.scrollIntoView === "function") {
    item.scrollIntoView({ block: "nearest" });
  }
}

function describe(data) {
  if (typeof data === "string") {
    return data;
  }
  return `<${data.byteLength} bytes>`;
}

function connect() {
  if (socket !== null) {
    return;
  }
  const url = socketUrl(window.location.href);
  setStatus("connecting", `connecting to ${url}…`);
  const ws = new WebSocket(url);
  ws.binaryType = "arraybuffer";
  socket = ws;
  ws.addEventListener("open", () => {
    setStatus("open", `connected to ${url}`);
    record("event", "connection opened");
    ui.text.focus?.();
  });
  ws.addEventListener("message", (event) => {
    record("received", describe(event.data));
  });
  ws.addEventListener("error", () => {
    // The browser gives no details here; the close event that follows has
    // the code.
    record("event", "connection error");
  });
  ws.addEventListener("close", (event) => {
    if (socket === ws) {
      socket = null;
    }
    const reason = event.reason ? `, reason "${event.reason}"` : "";
    const clean = event.wasClean ? "" : ", not clean";
    record("event", `connection closed (code ${event.code}${reason}${clean})`);
    setStatus("closed", `closed (code ${event.code})`);
  });
}

function disconnect() {
  if (socket !== null && socket.readyState === WebSocket.OPEN) {
    setStatus("closing", "closing…");
    socket.close(1000, "bye");
  }
}

function send(event) {
  event.preventDefault();
  const text = ui.text.value;
  if (socket === null || socket.readyState !== WebSocket.OPEN) {
    return;
  }
  socket.send(text);
  record("sent", text);
  ui.text.value = "";
}

ui.connect.addEventListener("click", connect);
ui.disconnect.addEventListener("click", disconnect);
ui.form.addEventListener("submit", send);
setStatus("disconnected", "disconnected");
