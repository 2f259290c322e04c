/**
 * chat.js: the chat page (`chat.html`), a client of the `/chat` mount.
 *
 * Wire format (see `txpulse/demos/chat.py`): after each (re)connection the
 * page sends `{"action": "join", "room": R, "name": N, "since": S}`, then
 * one `{"action": "say", "text": T}` per message. The server answers the
 * join with the room's position (`{"subscribed": R, "offset", "epoch"}`, and
 * `"recovered"` when S was a position), then sends hub envelopes
 * `{"topic": R, "data": EVENT, "offset", "epoch"}`, where EVENT is
 * `{"type": "join"|"leave", "name", "time"}` or
 * `{"type": "message", "name", "text", "time"}` (`time` in seconds since the
 * epoch), with `{"name": N, "notice": "..."}` when a protected server
 * sets the name to the signed-in identity, and with `{"error": "..."}` for
 * a refused request.
 *
 * No event lost, none shown twice: S is `null` on the first connection of a
 * session and, on every reconnection, the position of the last event shown,
 * so the server replays what was said while the page was away (the page's
 * own "left" and "joined" included) before the live events; a
 * {@link TopicCursor} drops what was already shown. When the server cannot
 * replay (it restarted, or too much was missed: `"recovered": false`), the
 * page says so once, keeps what it shows, and goes on with the live events.
 * An older server (no answer, no positions) gets the same page, without
 * resuming.
 *
 * Names and texts come from other users: they are only ever put into the
 * page as text (`textContent`, `createTextNode`), never as HTML.
 *
 * Access keys: a server started with `--protect /chat` refuses connections
 * without a token. With an access key (an API key from `--auth-keys`) in the
 * join form, the page asks `/@wstoken` for a fresh short-lived token before
 * every (re)connection and connects with it (`?ws_token=`). The key stays in
 * this page's memory: it is not stored and not put in the address.
 *
 * Query parameters: `?room=R&name=N` fill in the join form;
 * `?backoff=MS&backoffMax=MS` tune reconnection (for tests and demos).
 *
 * @module chat
 */

import { PulseSocket, TopicCursor, defaultUrl, reconnectingText, tuningFromQuery } from "./txpulse.js";

/** A token request the server refused for good (wrong key, no token service). */
class TokenRefused extends Error {}

/**
 * A fresh access token for `/chat`, from the server's token service.
 *
 * @param {string} key an API key
 * @returns {Promise<string>}
 */
export async function fetchToken(key) {
  const response = await fetch(new URL("@wstoken", location.href), {
    headers: { Authorization: `Bearer ${key}` },
    cache: "no-store",
  });
  if (response.status === 401) throw new TokenRefused("the access key was refused");
  if (response.status === 404) {
    throw new TokenRefused("this server does not issue access tokens (start it with --jwk)");
  }
  if (!response.ok) throw new Error(`the token service answered ${response.status}`);
  const { token } = await response.json();
  return token;
}

/** What the page says when the server could not replay what it missed. */
export const MISSED_TEXT = "messages sent while this page was away could not be recovered";

/** Most entries kept in the message list; older ones are dropped. */
const MAX_ENTRIES = 500;

/** Where the last name used is remembered (per browser). */
const NAME_KEY = "txpulse.chat.name";

/**
 * A time (seconds since the epoch) as local `HH:MM:SS`.
 *
 * @param {number} seconds
 * @returns {string}
 */
export function clockTime(seconds) {
  const date = new Date(seconds * 1000);
  return [date.getHours(), date.getMinutes(), date.getSeconds()]
    .map((part) => String(part).padStart(2, "0"))
    .join(":");
}

/**
 * A hue (0-359) that stays the same for a name, to tell senders apart.
 *
 * @param {string} name
 * @returns {number}
 */
export function nameHue(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) >>> 0;
  return hash % 360;
}

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
// ?backoff=MS&backoffMax=MS (the chat keeps its own silenceTimeout: 0).
const { backoff } = tuningFromQuery();

const url = defaultUrl("chat"); // relative: /chat next to this page
$("url").textContent = url;

/**
 * The current room, or null before joining and after leaving:
 * `{name, room, pulse, cursor, joining, answers, open, everOpen}`. `joining`
 * is true from sending a join until the first answer, which tells whether
 * the join was accepted; `answers` whether the server answered the join of
 * the current connection with the room's position; `open` is whether the
 * current connection opened; `cursor` the room's position (what was shown).
 */
let session = null;
window.chat = {
  get session() {
    return session;
  },
}; // for the console (and the browser test)

// -- rendering ---------------------------------------------------------------

function timeElement(seconds) {
  const time = document.createElement("time");
  const when = Number.isFinite(seconds) ? seconds : Date.now() / 1000;
  time.className = "time";
  time.dateTime = new Date(when * 1000).toISOString();
  time.textContent = clockTime(when);
  return time;
}

function nameElement(name) {
  const span = document.createElement("span");
  span.className = "name";
  span.textContent = name;
  span.style.setProperty("--hue", String(nameHue(name)));
  return span;
}

function textElement(text) {
  const span = document.createElement("span");
  span.className = "text";
  span.textContent = text;
  return span;
}

/** Append `item` to the list, following the end if the reader was there. */
function append(item) {
  const list = $("messages");
  const following = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(item);
  while (list.children.length > MAX_ENTRIES) list.firstElementChild.remove();
  if (following) list.scrollTop = list.scrollHeight;
}

function beat() {
  const dot = $("pulse");
  dot.classList.remove("beat");
  void dot.offsetWidth; // restart the animation
  dot.classList.add("beat");
}

/** One event from the room (see the module comment). */
function showEvent(event) {
  if (event === null || typeof event !== "object" || typeof event.name !== "string") return;
  const item = document.createElement("li");
  if (event.type === "message" && typeof event.text === "string") {
    item.className = "message";
    if (session !== null && event.name === session.name) item.classList.add("mine");
    item.append(timeElement(event.time), nameElement(event.name), textElement(event.text));
  } else if (event.type === "join" || event.type === "leave") {
    item.className = `notice ${event.type}`;
    const text = textElement(`${event.name} ${event.type === "join" ? "joined" : "left"}`);
    item.append(timeElement(event.time), text);
  } else {
    return; // a newer server's event: nothing sensible to show
  }
  append(item);
  beat();
}

/** A notice about this page's own connection (not from the room). */
function showLocal(text, kind) {
  const item = document.createElement("li");
  item.className = `notice local ${kind}`;
  item.append(timeElement(undefined), textElement(text));
  append(item);
}

function showError(element, message) {
  element.textContent = message;
  element.hidden = message === "";
}

const STATUS_TEXT = {
  connecting: "connecting…",
  open: "connected",
  closing: "leaving…",
  closed: "not connected",
};

function showStatus(state, info = {}) {
  const status = $("status");
  status.dataset.state = state;
  if (state === "reconnecting") {
    status.textContent = reconnectingText(info);
  } else {
    status.textContent = STATUS_TEXT[state] ?? state;
  }
  $("send").disabled = state !== "open";
}

// -- the connection ----------------------------------------------------------

function join(name, room, key = "") {
  leave();
  $("messages").replaceChildren();
  showError($("error"), "");
  showError($("join-error"), "");
  const pulse = new PulseSocket({
    url,
    // The chat server only speaks when someone in the room does, and a room
    // can stay quiet for hours, so PulseSocket's silence check (which drops a
    // connection that received nothing for a few seconds) would make the page
    // reconnect, and post join/leave notices, every few seconds. It is off:
    // the server pings idle peers (twistd --ping-interval, 20 s) and drops
    // the ones that do not answer, the browser answers those pings by itself,
    // and a connection the server or the network closes still reaches
    // `onclose` and is retried. The cost: pings are invisible to JavaScript,
    // so a connection that vanishes without a close (a laptop waking up on
    // another network) is noticed only when TCP gives up on it.
    silenceTimeout: 0,
    backoff,
    token: key === "" ? null : () => tokenFor(key, current),
  });
  const cursor = new TopicCursor();
  const current = { name, room, pulse, cursor, joining: false, answers: false, open: false, everOpen: false };
  session = current;

  pulse.onstatus = (state, info) => showStatus(state, info);
  pulse.onopen = () => {
    // The server's join state is per connection: join again on every one.
    if (current.everOpen) showLocal("reconnected", "up");
    current.everOpen = current.open = true;
    current.joining = true;
    current.answers = false;
    showError($("error"), "");
    // From the last event shown: the server replays what came after it.
    const since = cursor.subscribing();
    pulse.send(JSON.stringify({ action: "join", room, name: current.name, since }));
  };
  pulse.onclose = (code, reason) => {
    cursor.lost();
    if (!current.everOpen) showError($("error"), connectFailure(key, reason));
    // Also called for attempts that never opened: report each loss once.
    if (!current.open) return;
    current.open = false;
    showLocal("connection lost, reconnecting…", "down");
  };
  pulse.onmessage = (data) => {
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return; // not for us (the server only sends JSON objects)
    }
    if (message === null || typeof message !== "object") return;
    if (typeof message.error === "string") {
      if (current.joining) {
        // The join itself was refused (bad name or room, not allowed...):
        // back to the form, with the server's reason.
        leave();
        showError($("join-error"), `Could not join: ${message.error}`);
        $("name").focus();
      } else {
        showError($("error"), message.error);
      }
      return;
    }
    if (typeof message.name === "string" && typeof message.notice === "string") {
      // On a protected server the name is the signed-in identity: the
      // server says so when it differs from the one asked for.
      current.name = message.name;
      $("me").textContent = message.name;
      showLocal(message.notice, "up");
      return;
    }
    current.joining = false;
    if (typeof message.subscribed === "string") {
      // The join's answer: the room's position, and whether what this
      // page missed follows.
      current.answers = true;
      if (cursor.answered(message)) showLocal(MISSED_TEXT, "missed");
      return;
    }
    switch (cursor.received(message, current.answers)) {
      case "duplicate": // shown already (the seam between replay and live)
      case "early": // before the join's answer: it comes again after it
        return;
      case "gap": // the chat cannot ask again on this connection: say so
        cursor.skip(message);
        showLocal(MISSED_TEXT, "missed");
        break;
      case "reset": // the room's history was lost while connected
        showLocal(MISSED_TEXT, "missed");
        break;
    }
    showEvent(message.data);
  };

  $("room-name").textContent = room;
  $("me").textContent = name;
  $("join-card").hidden = true;
  $("room-card").hidden = false;
  $("text").focus();
}

/**
 * Why the first connection of a session failed, as far as the page can
 * tell: PulseSocket says when no token could be had (`reason` "no token…");
 * past that, a browser is not told why a handshake failed (a protected
 * server answers 401 to a page without a key, or to a token it does not
 * accept), nor whether the server was reachable at all.
 */
function connectFailure(key, reason) {
  if (key === "") {
    return "Could not connect. If this server requires an access key, leave and join with one.";
  }
  if (reason.startsWith("no token")) return `Could not get an access token (${reason}); retrying.`;
  return "Could not connect with the access key's token; retrying. The server may be down, or may not accept its tokens.";
}

/** The token for the next attempt of `current`; a refused key ends the session. */
async function tokenFor(key, current) {
  try {
    return await fetchToken(key);
  } catch (error) {
    if (error instanceof TokenRefused && session === current) {
      leave();
      showError($("join-error"), `Could not join: ${error.message}`);
      $("key").focus();
    }
    throw error;
  }
}

function leave() {
  if (session === null) return;
  const { pulse } = session;
  session = null;
  pulse.onstatus = pulse.onopen = pulse.onclose = pulse.onmessage = null;
  pulse.close();
  showStatus("closed");
  $("room-card").hidden = true;
  $("join-card").hidden = false;
}

// -- the forms -----------------------------------------------------------------

function remembered() {
  try {
    return localStorage.getItem(NAME_KEY);
  } catch {
    return null; // storage disabled: nothing remembered
  }
}

$("name").value = params.get("name") ?? remembered() ?? "";
$("room").value = params.get("room") ?? $("room").value;

$("join-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const name = $("name").value;
  const room = $("room").value.trim();
  const key = $("key").value.trim();
  try {
    localStorage.setItem(NAME_KEY, name);
  } catch {
    // storage disabled or full: the name is just not remembered
  }
  // Keep the room in the address, so that the link can be shared.
  const address = new URL(location.href);
  address.searchParams.set("room", room);
  address.searchParams.delete("name");
  history.replaceState(null, "", address);
  join(name, room, key);
});

$("say-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("text").value;
  if (session === null || text.trim() === "") return;
  if (session.pulse.send(JSON.stringify({ action: "say", text }))) {
    $("text").value = "";
    showError($("error"), "");
  } else {
    // Kept in the box: the user can send it once reconnected.
    showError($("error"), "Not connected: the message was not sent.");
  }
});

$("leave").addEventListener("click", () => {
  leave();
  $("name").focus();
});

if ($("name").value === "") $("name").focus();
else $("join").focus();
