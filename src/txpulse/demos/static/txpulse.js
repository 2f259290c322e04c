/**
 * txpulse.js: a small WebSocket client that stays connected. It has no
 * dependencies and needs no build step; it is an ES module that any page can
 * import (it is served at `/txpulse.js` by `twistd txpulse`).
 *
 *     import { PulseSocket, defaultUrl } from "/txpulse.js";
 *
 *     const pulse = new PulseSocket({ url: defaultUrl("/ws") });
 *     pulse.onstatus = (state, info) => console.log(state, info);
 *     pulse.onmessage = (data) => console.log("got", data);
 *     pulse.onopen = () => pulse.send("hello");
 *     // later: pulse.close();       // closes for good; no more reconnects
 *
 * What it does beyond a plain `WebSocket`:
 *  - When the connection drops or cannot be made, it reconnects after an
 *    exponential backoff with jitter (see {@link backoffDelay}). After a
 *    successful open the backoff starts again from `backoff.initial`.
 *    It never reconnects after an explicit {@link PulseSocket#close}.
 *  - A connection that says nothing for `silenceTimeout` ms (no message, and
 *    while connecting, no open either) counts as dead: it is closed (code 4000)
 *    and a reconnection is scheduled as for any other drop. The server must
 *    therefore send something at least that often; txpulse's `/ws` demo sends
 *    a heartbeat every second. Set `silenceTimeout: 0` to turn this off.
 *  - With a `token` function, every attempt first awaits a fresh access
 *    token and connects with it as `?ws_token=` (what `twistd txpulse
 *    --protect` accepts from browsers, which cannot send an Authorization
 *    header). Tokens are short-lived, so each reconnection gets a new one.
 *    A `token` function that throws fails that attempt like a refused
 *    connection (`onclose(1006, "no token: ...")`), and the next attempt
 *    follows the backoff; call `close()` from it to stop retrying. One that
 *    does not settle within `tokenTimeout` ms fails the attempt the same
 *    way (`"no token after N ms"`), so a hung token endpoint cannot leave
 *    the socket connecting forever.
 *
 * States (`pulse.state`, and the first argument of `onstatus`):
 *  - `"connecting"`: the first connection attempt (after construction or `open()`);
 *  - `"open"`: connected; `send()` works;
 *  - `"reconnecting"`: the connection was lost; waiting for the next attempt
 *    or making it (`info.attempt` counts attempts since the last open,
 *    `info.delay` is the wait in ms before this one, 0 when it starts);
 *  - `"closing"`: `close()` was called and the close handshake is under way;
 *  - `"closed"`: closed by `close()` (or not started yet); `open()` starts again.
 *
 * Callbacks (assign a function or leave `null`); the same notifications are
 * dispatched as DOM events (`pulse.addEventListener("message", e => e.detail.data)`):
 *  - `onopen()`                            event "open",    detail `{}`
 *  - `onmessage(data, event)`              event "message", detail `{data, event}`;
 *    `data` is a string for text messages, an ArrayBuffer for binary ones
 *    (`binaryType` option);
 *  - `onclose(code, reason, wasClean)`     event "close",   detail `{code, reason, wasClean}`;
 *    called for every connection or attempt that ends, including ones that
 *    never opened (code 1006) and silent ones (code 1006, reason says why);
 *  - `onstatus(state, info)`               event "status",  detail `{state, ...info}`;
 *    called on every state change and on every new reconnection attempt.
 *
 * An exception thrown by a callback is reported (`reportError`) and does not
 * disturb the connection logic.
 *
 * Pub/sub that resumes: {@link PulsePubSub} is a client of txpulse's
 * `/pubsub` hub on a PulseSocket. It keeps the last position (`offset` and
 * `epoch`) of each topic and, after every reconnection, subscribes again
 * from it (`"since"`), so the application sees every publication once, in
 * order, and is told (`onrecoveryfailed`) when the server could not replay
 * what was missed:
 *
 *     import { PulsePubSub } from "/txpulse.js";
 *
 *     const hub = new PulsePubSub();                     // defaultUrl("/pubsub")
 *     hub.onrecoveryfailed = (topic, position) => reloadEverything(topic);
 *     hub.subscribe("news", (data, position) => show(data));
 *     hub.publish("news", { text: "hi" });               // false while disconnected
 *
 * {@link TopicCursor} is the same bookkeeping for one topic, for pages that
 * speak another protocol on top of the hub (the chat page).
 *
 * @module txpulse
 */

/**
 * @typedef {object} Backoff
 * @property {number} [initial=250] first reconnection delay, in ms
 * @property {number} [max=5000]    upper bound of any delay, in ms
 * @property {number} [factor=2]    growth per failed attempt
 * @property {number} [jitter=0.5]  fraction (0..1) of the delay that is random:
 *   a delay `d` becomes uniform in `[d * (1 - jitter), d]`, so that many
 *   clients dropped at once do not all come back at the same instant
 */

/** @type {Readonly<Required<Backoff>>} */
export const DEFAULT_BACKOFF = Object.freeze({ initial: 250, max: 5000, factor: 2, jitter: 0.5 });

/** Default `tokenTimeout`, in ms. */
export const DEFAULT_TOKEN_TIMEOUT = 10000;

/** Default `silenceTimeout`, in ms. */
export const DEFAULT_SILENCE_TIMEOUT = 5000;

/** Close code sent when a connection is dropped for being silent (private-use range). */
export const SILENCE_CLOSE_CODE = 4000;

/**
 * The WebSocket URL for `path` on the host that served the page: `ws://` for
 * an `http:` page, `wss://` for an `https:` one. A relative `path` (`"ws"`)
 * resolves against the page's own URL, so a site mounted below `/` works too.
 *
 * @param {string} [path="/ws"]
 * @param {{href: string}} [base=globalThis.location] the page location
 * @returns {string}
 */
export function defaultUrl(path = "/ws", base = globalThis.location) {
  const url = new URL(path, base.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  url.hash = "";
  return url.href;
}

/**
 * The delay before reconnection attempt number `attempt` (0 for the first
 * attempt after a drop): `min(max, initial * factor ** attempt)`, less a
 * random part of at most `jitter` times that.
 *
 * @param {number} attempt
 * @param {Backoff} [backoff]
 * @param {() => number} [random=Math.random] a source of numbers in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(attempt, backoff = DEFAULT_BACKOFF, random = Math.random) {
  const { initial, max, factor, jitter } = { ...DEFAULT_BACKOFF, ...backoff };
  const base = Math.min(max, initial * factor ** attempt);
  return base * (1 - jitter * random());
}

/**
 * Connection tuning read from a page's query string, for demos and tests:
 * `?silence=MS&backoff=MS&backoffMax=MS` become `silenceTimeout`,
 * `backoff.initial` and `backoff.max`. A parameter that is missing or not a
 * number >= 0 is left out (`silenceTimeout` is then `undefined`: the
 * default), so a page passes the result straight to {@link PulseSocket}.
 *
 * @param {string} [search=globalThis.location.search] e.g. `"?backoff=100"`
 * @returns {{silenceTimeout: (number|undefined), backoff: Backoff}}
 */
export function tuningFromQuery(search = globalThis.location.search) {
  const params = new URLSearchParams(search);
  const number = (name) => {
    const value = Number(params.get(name));
    return params.has(name) && Number.isFinite(value) && value >= 0 ? value : undefined;
  };
  const backoff = {};
  const initial = number("backoff");
  const max = number("backoffMax");
  if (initial !== undefined) backoff.initial = initial;
  if (max !== undefined) backoff.max = max;
  return { silenceTimeout: number("silence"), backoff };
}

/**
 * The status line of a `"reconnecting"` state (see `onstatus`), as the
 * demo pages show it: `reconnecting… (attempt N in S s)` while waiting,
 * `reconnecting… (attempt N)` once the attempt starts.
 *
 * @param {{attempt: number, delay: number}} info
 * @returns {string}
 */
export function reconnectingText(info) {
  return info.delay
    ? `reconnecting… (attempt ${info.attempt} in ${(info.delay / 1000).toFixed(1)} s)`
    : `reconnecting… (attempt ${info.attempt})`;
}

/**
 * A WebSocket connection that reconnects by itself. See the module comment.
 */
export class PulseSocket extends EventTarget {
  /**
   * @param {object} [options]
   * @param {string} [options.url=defaultUrl("/ws")] the `ws://` or `wss://` URL
   * @param {string|string[]} [options.protocols] subprotocols to offer
   * @param {number} [options.silenceTimeout=5000] ms without a message before
   *   the connection counts as dead; 0 turns the check off
   * @param {Backoff} [options.backoff] reconnection delays (merged with {@link DEFAULT_BACKOFF})
   * @param {"arraybuffer"|"blob"} [options.binaryType="arraybuffer"]
   * @param {boolean} [options.connect=true] start connecting at once (in a
   *   microtask, so that callbacks assigned right after construction see
   *   the first status); if false, call {@link PulseSocket#open}
   * @param {typeof WebSocket} [options.WebSocket=globalThis.WebSocket] the
   *   WebSocket class to use (for tests, or other environments)
   * @param {null | (() => Promise<string|null> | string | null)} [options.token]
   *   called before every connection attempt; the access token it returns
   *   is sent as the `ws_token` query parameter (none for `null` or "")
   * @param {number} [options.tokenTimeout=10000] ms to wait for `token()`
   *   before the attempt counts as failed; 0 waits for ever
   */
  constructor({
    url = defaultUrl("/ws"),
    protocols = undefined,
    silenceTimeout = DEFAULT_SILENCE_TIMEOUT,
    backoff = {},
    binaryType = "arraybuffer",
    connect = true,
    WebSocket = globalThis.WebSocket,
    token = null,
    tokenTimeout = DEFAULT_TOKEN_TIMEOUT,
  } = {}) {
    super();
    const scheme = new URL(url).protocol; // throws a TypeError if malformed
    if (!["ws:", "wss:", "http:", "https:"].includes(scheme)) {
      throw new SyntaxError(`not a WebSocket URL: ${url}`);
    }
    /** @readonly */ this.url = url;
    /** @readonly */ this.protocols = protocols;
    /** @readonly */ this.silenceTimeout = silenceTimeout;
    /** @readonly */ this.backoff = Object.freeze({ ...DEFAULT_BACKOFF, ...backoff });
    /** @readonly */ this.binaryType = binaryType;
    /** @type {null | (() => void)} */ this.onopen = null;
    /** @type {null | ((data: string|ArrayBuffer|Blob, event: MessageEvent) => void)} */ this.onmessage = null;
    /** @type {null | ((code: number, reason: string, wasClean: boolean) => void)} */ this.onclose = null;
    /** @type {null | ((state: string, info: object) => void)} */ this.onstatus = null;

    this._WebSocket = WebSocket;
    this._token = token;
    /** @readonly */ this.tokenTimeout = tokenTimeout;
    this._pendingToken = null; // the attempt waiting for its token, if any
    this._tokenTimer = null;
    this._state = "closed";
    this._ws = null; // the current socket, or null
    this._attempt = 0; // reconnection attempts since the last open
    this._retryTimer = null;
    this._silenceTimer = null;
    this._stopped = !connect; // true after close(): never reconnect
    if (connect) {
      queueMicrotask(() => {
        if (!this._stopped) this.open();
      });
    }
  }

  /** The current state: "connecting", "open", "reconnecting", "closing" or "closed". */
  get state() {
    return this._state;
  }

  /** The negotiated subprotocol ("" if none, or while not open). */
  get protocol() {
    return this._ws && this._state === "open" ? this._ws.protocol : "";
  }

  /**
   * Start connecting (again, after `close()`); does nothing if a connection
   * or a reconnection is already under way.
   */
  open() {
    this._stopped = false;
    if (this._ws !== null || this._retryTimer !== null || this._pendingToken !== null) return;
    this._attempt = 0;
    this._connect("connecting", {});
  }

  /**
   * Send a message if the connection is open.
   *
   * Messages are not queued while disconnected: the caller decides what to
   * do with one that could not be sent.
   *
   * @param {string|ArrayBuffer|ArrayBufferView|Blob} data
   * @returns {boolean} whether the message was handed to the socket
   */
  send(data) {
    if (this._state !== "open" || this._ws === null) return false;
    this._ws.send(data);
    return true;
  }

  /**
   * Close the connection for good (no more reconnections until `open()`).
   *
   * @param {number} [code=1000] 1000, or 3000-4999
   * @param {string} [reason=""]
   */
  close(code = 1000, reason = "") {
    this._stopped = true;
    if (this._pendingToken !== null) {
      // An attempt waiting for its token ends here; a token that arrives
      // later is not used.
      this._endTokenWait();
      this._emit("close", { code: 1006, reason: "closed by the client", wasClean: false });
      if (!this._stopped) return; // the close callback called open(): that attempt stands
    }
    clearTimeout(this._retryTimer);
    this._retryTimer = null;
    const ws = this._ws;
    if (ws !== null && ws.readyState === ws.OPEN) {
      // Keep listening: "close" arrives after the handshake, with the code
      // the server answered. The silence timer stays armed and bounds the
      // wait if the peer has gone away.
      ws.close(code, reason);
      this._setState("closing", {});
      return;
    }
    if (ws !== null) {
      this._forget(ws);
      ws.close();
      this._emit("close", { code: 1006, reason: "closed by the client", wasClean: false });
      if (!this._stopped) return;
    }
    this._setState("closed", {});
  }

  // -- internals -----------------------------------------------------------

  _connect(state, info) {
    if (this._token === null) {
      this._dial(this.url);
      this._setState(state, info);
      return;
    }
    this._setState(state, info);
    const pending = {};
    this._pendingToken = pending;
    if (this.tokenTimeout > 0) {
      this._tokenTimer = setTimeout(() => {
        if (this._pendingToken !== pending) return;
        this._endTokenWait();
        this._lost(1006, `no token after ${this.tokenTimeout} ms`, false);
      }, this.tokenTimeout);
    }
    Promise.resolve()
      .then(() => this._token())
      .then(
        (token) => {
          if (this._pendingToken !== pending) return; // closed or timed out meanwhile
          this._endTokenWait();
          try {
            this._dial(withToken(this.url, token));
          } catch (error) {
            report(error);
          }
        },
        (error) => {
          if (this._pendingToken !== pending) return;
          this._endTokenWait();
          this._lost(1006, `no token: ${error?.message ?? error}`, false);
        },
      );
  }

  /** The current attempt stops waiting for its token. */
  _endTokenWait() {
    this._pendingToken = null;
    clearTimeout(this._tokenTimer);
    this._tokenTimer = null;
  }

  /** Open a socket to `url` and wire its events to this object. */
  _dial(url) {
    let ws;
    try {
      ws = new this._WebSocket(url, this.protocols);
    } catch (error) {
      // A forbidden port, for instance: retrying cannot help.
      this._stopped = true;
      this._setState("closed", { error });
      throw error;
    }
    ws.binaryType = this.binaryType;
    this._ws = ws;
    ws.onopen = () => {
      this._attempt = 0;
      this._armSilence();
      this._setState("open", {});
      this._emit("open", {});
    };
    ws.onmessage = (event) => {
      this._armSilence();
      this._emit("message", { data: event.data, event });
    };
    ws.onclose = (event) => {
      this._forget(ws);
      this._lost(event.code, event.reason, event.wasClean);
    };
    this._armSilence();
  }

  /** Detach `ws` from this object: its late events are ignored. */
  _forget(ws) {
    ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
    if (this._ws === ws) this._ws = null;
    clearTimeout(this._silenceTimer);
    this._silenceTimer = null;
  }

  /** The current socket ended (any way at all). */
  _lost(code, reason, wasClean) {
    this._emit("close", { code, reason, wasClean });
    if (this._stopped) {
      this._setState("closed", {});
      return;
    }
    const delay = backoffDelay(this._attempt, this.backoff);
    this._attempt += 1;
    const attempt = this._attempt;
    this._setState("reconnecting", { attempt, delay });
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._connect("reconnecting", { attempt, delay: 0 });
    }, delay);
  }

  _armSilence() {
    clearTimeout(this._silenceTimer);
    this._silenceTimer = null;
    if (!(this.silenceTimeout > 0)) return;
    this._silenceTimer = setTimeout(() => this._silent(), this.silenceTimeout);
  }

  /** Nothing arrived for `silenceTimeout` ms: drop the connection. */
  _silent() {
    const ws = this._ws;
    if (ws === null) return;
    this._forget(ws);
    // Do not wait for a close handshake on a connection that is likely dead.
    try {
      ws.close(SILENCE_CLOSE_CODE, "silent connection");
    } catch {
      ws.close();
    }
    this._lost(1006, `no message for ${this.silenceTimeout} ms`, false);
  }

  _setState(state, info) {
    this._state = state;
    this._emit("status", { state, ...info }, [state, info]);
  }

  _emit(name, detail, args = Object.values(detail)) {
    const callback = this["on" + name];
    if (typeof callback === "function") {
      try {
        callback.apply(this, args);
      } catch (error) {
        report(error);
      }
    }
    this.dispatchEvent(new CustomEvent(name, { detail }));
  }
}

// -- pub/sub that resumes ------------------------------------------------------

/**
 * @typedef {object} Position
 * @property {number} offset the publication's number in its topic (1, 2, ...)
 * @property {string} epoch  the topic's epoch: offsets of another epoch are
 *   not comparable (the server lost the topic's history in between)
 */

/**
 * The position `{offset, epoch}` of a server message (a delivery or a
 * subscription's answer), or `null` if it has none (a server without
 * positions).
 *
 * @param {object} message
 * @returns {Position|null}
 */
export function positionOf(message) {
  const { offset, epoch } = message ?? {};
  if (Number.isInteger(offset) && offset >= 0 && typeof epoch === "string" && epoch !== "") {
    return { offset, epoch };
  }
  return null;
}

/**
 * Where a subscriber is in one topic, and what to do with each message of
 * it. The resume rules (the same as the Python `txpulse.pubsub.PubSubClient`):
 *
 *  - On every connection, subscribe with `since: cursor.subscribing()`: the
 *    last position delivered, or `null` (none known yet).
 *  - The server's answer (`{"subscribed": T, ...}`) goes to
 *    {@link TopicCursor#answered}; it returns `true` when publications were
 *    missed and cannot be replayed (`"recovered": false`, e.g. a restarted
 *    server): tell the application, once; delivery goes on from the
 *    answer's position.
 *  - Each delivery goes to {@link TopicCursor#received}, which says what to
 *    do with it: `"deliver"` it; drop a `"duplicate"` (at or below the last
 *    position: the seam between a replay and what was already seen) or an
 *    `"early"` one (before the answer: it belongs to the subscription the
 *    server is replacing and comes again in the replay); on a `"gap"` (past
 *    the next offset) subscribe again from {@link TopicCursor#position}, or
 *    accept the loss with {@link TopicCursor#skip}; on `"reset"` (another
 *    epoch: the history was lost while connected) tell the application,
 *    then deliver.
 *  - Messages without positions (an older server) are always delivered.
 */
export class TopicCursor {
  /**
   * @param {Position|null} [position=null] resume after this position
   *   (e.g. one kept from an earlier page) instead of starting from now
   */
  constructor(position = null) {
    /** The last position delivered (or answered), or `null`. @type {Position|null} */
    this.position = positionOf(position);
    /** A subscribe was sent on this connection and not answered yet. */
    this.waiting = false;
    this._asked = null;
  }

  /**
   * The `since` of a subscribe about to be sent (`null`: none); the cursor
   * then waits for its answer.
   *
   * @returns {Position|null}
   */
  subscribing() {
    this.waiting = true;
    this._asked = this.position;
    return this.position === null ? null : { ...this.position };
  }

  /** The connection was lost: the answer will not come. */
  lost() {
    this.waiting = false;
  }

  /**
   * The server answered the subscribe.
   *
   * @param {object} answer `{"subscribed": T, "offset", "epoch", "recovered"}`
   * @returns {boolean} whether publications were missed and cannot be replayed
   */
  answered(answer) {
    if (!this.waiting) return false;
    this.waiting = false;
    const top = positionOf(answer);
    const asked = this._asked;
    if (asked === null) {
      this.position = top; // a fresh subscription starts from the present
      return false;
    }
    if (top !== null && answer.recovered === true && top.epoch === asked.epoch) {
      this.position = asked; // the replay of asked+1 ... top follows
      return false;
    }
    this.position = top;
    return true;
  }

  /**
   * What to do with a delivery (see the class comment); `"deliver"` and
   * `"reset"` move the position to the delivery's.
   *
   * @param {object} message `{"topic", "data", "offset", "epoch"}`
   * @param {boolean} [answers=true] whether the server answered a
   *   subscribe on this connection (a server that never does delivers
   *   before any answer, and its deliveries are not "early")
   * @returns {"deliver"|"duplicate"|"early"|"gap"|"reset"}
   */
  received(message, answers = true) {
    if (this.waiting && answers) return "early";
    const position = positionOf(message);
    if (position === null) return "deliver";
    const last = this.position;
    if (last !== null && position.epoch === last.epoch) {
      if (position.offset <= last.offset) return "duplicate";
      if (position.offset > last.offset + 1) return "gap";
    }
    this.position = position;
    return last !== null && position.epoch !== last.epoch ? "reset" : "deliver";
  }

  /**
   * Accept a gap: the position moves to `message`'s (deliver it then).
   *
   * @param {object} message
   */
  skip(message) {
    this.position = positionOf(message) ?? this.position;
  }
}

/**
 * A client of txpulse's pub/sub hub that stays connected (a
 * {@link PulseSocket}, `pulse.socket`) and resumes each subscription where
 * it left off (see {@link TopicCursor}).
 *
 * Callbacks (assign a function or leave `null`; what they throw is reported
 * and does not disturb the client):
 *  - `onrecoveryfailed(topic, position)`: publications of `topic` were
 *    missed and cannot be replayed; delivery goes on after `position`
 *    (`null` from a server without positions). Reload what you show of
 *    `topic`. A subscription's own `onrecoveryfailed` comes first.
 *  - `onerror(message)`: the server refused a request (`{"error"}`).
 * For the connection's state, use `pulse.socket.onstatus` and friends.
 */
export class PulsePubSub {
  /**
   * @param {object} [options] those of {@link PulseSocket}; `url` defaults
   *   to `defaultUrl("/pubsub")` and `silenceTimeout` to 0 (the hub says
   *   nothing while no one publishes; the server's pings keep watch)
   */
  constructor({ url = defaultUrl("/pubsub"), silenceTimeout = 0, ...options } = {}) {
    /** @type {null | ((topic: string, position: Position|null) => void)} */ this.onrecoveryfailed = null;
    /** @type {null | ((message: string) => void)} */ this.onerror = null;
    this._topics = new Map(); // topic -> {callback, onrecoveryfailed, cursor}
    this._answers = false; // the current connection answered a subscribe
    /** @readonly */ this.socket = new PulseSocket({ url, silenceTimeout, ...options });
    this.socket.addEventListener("open", () => this._opened());
    this.socket.addEventListener("message", (event) => this._received(event.detail.data));
    this.socket.addEventListener("close", () => this._lost());
  }

  /** The topics subscribed to. @returns {string[]} */
  get topics() {
    return [...this._topics.keys()];
  }

  /**
   * The last position of `topic` delivered (or its position when the
   * subscription started); `null` if none is known or not subscribed.
   *
   * @param {string} topic
   * @returns {Position|null}
   */
  position(topic) {
    const position = this._topics.get(topic)?.cursor.position;
    return position ? { ...position } : null;
  }

  /**
   * Subscribe to `topic` (now if connected, else on connection) and again
   * after every reconnection, resuming. Subscribing again to a topic
   * replaces its callbacks and keeps its position.
   *
   * @param {string} topic
   * @param {(data: any, position: Position|null) => void} callback every
   *   publication of `topic`, once, in order
   * @param {object} [options]
   * @param {Position|null} [options.since=null] resume after this position
   * @param {null | ((topic: string, position: Position|null) => void)} [options.onrecoveryfailed=null]
   */
  subscribe(topic, callback, { since = null, onrecoveryfailed = null } = {}) {
    const existing = this._topics.get(topic);
    if (existing !== undefined) {
      existing.callback = callback;
      existing.onrecoveryfailed = onrecoveryfailed;
      return;
    }
    const subscription = { callback, onrecoveryfailed, cursor: new TopicCursor(since) };
    this._topics.set(topic, subscription);
    if (this.socket.state === "open") this._subscribe(topic, subscription);
  }

  /**
   * Stop delivering `topic` and forget its position.
   *
   * @param {string} topic
   */
  unsubscribe(topic) {
    if (!this._topics.delete(topic)) return;
    this.socket.send(JSON.stringify({ action: "unsubscribe", topic }));
  }

  /**
   * Publish `data` (anything JSON can encode) to `topic`, if connected.
   * Nothing is queued while disconnected: the caller decides what to do
   * with a publication that was not sent.
   *
   * @param {string} topic
   * @param {any} data
   * @returns {boolean} whether it was sent
   */
  publish(topic, data) {
    return this.socket.send(JSON.stringify({ action: "publish", topic, data }));
  }

  /** Close for good (see {@link PulseSocket#close}); positions are kept for `open()`. */
  close() {
    this.socket.close();
  }

  /** Connect again after `close()`; the subscriptions resume. */
  open() {
    this.socket.open();
  }

  // -- internals -----------------------------------------------------------

  _subscribe(topic, subscription) {
    const since = subscription.cursor.subscribing();
    this.socket.send(JSON.stringify(since === null ? { action: "subscribe", topic } : { action: "subscribe", topic, since }));
  }

  _opened() {
    this._answers = false;
    for (const [topic, subscription] of this._topics) this._subscribe(topic, subscription);
  }

  _lost() {
    for (const subscription of this._topics.values()) subscription.cursor.lost();
  }

  _received(data) {
    if (typeof data !== "string") return;
    let message;
    try {
      message = JSON.parse(data);
    } catch {
      return;
    }
    if (message === null || typeof message !== "object") return;
    if (typeof message.subscribed === "string") {
      this._answers = true;
      const subscription = this._topics.get(message.subscribed);
      if (subscription !== undefined && subscription.cursor.answered(message)) {
        this._recoveryFailed(message.subscribed, subscription);
      }
    } else if (typeof message.topic === "string" && "data" in message) {
      this._delivered(message);
    } else if (typeof message.error === "string") {
      this._call(this.onerror, message.error);
    }
  }

  _delivered(message) {
    const { topic } = message;
    const subscription = this._topics.get(topic);
    if (subscription === undefined) return;
    const { cursor } = subscription;
    const verdict = cursor.received(message, this._answers);
    if (verdict === "duplicate" || verdict === "early") return;
    if (verdict === "gap") {
      this._subscribe(topic, subscription); // the server starts over from our position
      return;
    }
    if (verdict === "reset") {
      const { offset, epoch } = cursor.position;
      this._recoveryFailed(topic, subscription, { offset: offset - 1, epoch });
      if (this._topics.get(topic) !== subscription) return;
    }
    this._call(subscription.callback, message.data, positionOf(message));
  }

  _recoveryFailed(topic, subscription, position = subscription.cursor.position) {
    const hook = subscription.onrecoveryfailed ?? this.onrecoveryfailed;
    this._call(hook, topic, position ? { ...position } : null);
  }

  _call(callback, ...args) {
    if (typeof callback !== "function") return;
    try {
      callback.apply(this, args);
    } catch (error) {
      report(error);
    }
  }
}

/**
 * `url` with the access token as its `ws_token` query parameter (unchanged
 * without a token).
 *
 * @param {string} url
 * @param {string|null|undefined} token
 * @returns {string}
 */
export function withToken(url, token) {
  if (!token) return url;
  const address = new URL(url);
  address.searchParams.set("ws_token", token);
  return address.href;
}

function report(error) {
  if (typeof globalThis.reportError === "function") {
    globalThis.reportError(error);
  } else {
    setTimeout(() => {
      throw error;
    });
  }
}
