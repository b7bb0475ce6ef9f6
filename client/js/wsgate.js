// wsgate.js: the browser client of the wsgate pub/sub gateway. One dependency-free ES module:
//
//   import { connect } from "/wsgate.js";
//   const client = connect("ws://127.0.0.1:8080/", { onRecoveryFailed: (ch) => reload(ch) });
//   await client.subscribe("news", (m) => console.log(m.seq, m.data));
//
// It keeps one WebSocket open, reconnecting by itself with exponential backoff and jitter,
// resubscribes every channel with `since` (the last message it delivered), and delivers each
// channel's messages exactly once and in `seq` order across reconnects. The protocol is in the
// project's docs/protocol.md, the user's guide in docs/clients.md; the Go client (package
// client) behaves the same way.

/**
 * A channel message as the gateway numbered it.
 * @typedef {object} Message
 * @property {string} channel
 * @property {number} seq    the message's number in its channel; consecutive ones differ by 1
 * @property {string} epoch  names the channel's numbering the message belongs to
 * @property {string} [id]   the publish id, when the publish had one
 * @property {any} data      the published JSON value
 */

/** @typedef {"connecting" | "connected" | "reconnecting" | "closed"} State */

/**
 * @typedef {object} PublishResult
 * @property {number} seq         the message's number; 0 when duplicate
 * @property {boolean} duplicate  the gateway had already taken this id on this channel
 */

/**
 * Options of connect(). Every field is optional; times are in milliseconds.
 * @typedef {object} Options
 * @property {string[]} [urls]       more URLs of the same gateway (cluster nodes), tried in turn after
 *                                   each failed attempt or lost connection
 * @property {() => (string | Promise<string>)} [token]  called before every attempt; sent as ?token=
 *                                   (an empty result connects without a token)
 * @property {string} [healthURL]    fetched before every reconnect attempt; not 2xx: the attempt fails
 * @property {string[]} [healthURLs] one health URL per WebSocket URL (the first for `url`); "" for none
 * @property {number} [backoffInitial=500]  delay before the first reconnect attempt
 * @property {number} [backoffMax=30000]    cap of the delay, jitter included
 * @property {number} [backoffMultiplier=2] growth of the delay after each failed attempt
 * @property {number} [jitter=100]          least spread: the delay moves by up to ±max(jitter, jitterFraction × delay)
 * @property {number} [jitterFraction=0.5]  spread relative to the delay
 * @property {number} [dialTimeout=10000]   bound of one attempt (health probe, token, opening handshake)
 * @property {(state: State) => void} [onState]
 * @property {(channel: string) => void} [onRecoveryFailed]  the gateway could not replay what was
 *                                   missed ("recovered":false): fetch the channel's state anew
 * @property {(message: Message) => void} [onBroadcast]  {"op":"broadcast"} frames (channel "", seq 0)
 * @property {(error: Error) => void} [onError]  what no promise reports: failed attempts, lost
 *                                   connections, refused resubscribes, handler exceptions
 * @property {typeof WebSocket} [WebSocket]  the WebSocket class (tests inject a fake)
 * @property {(url: string, init: {signal: AbortSignal}) => Promise<{ok: boolean, status: number}>} [fetch]
 * @property {(fn: () => void, ms: number) => () => void} [schedule]  runs fn after ms, returns a
 *                                   cancel function (tests inject a fake clock)
 * @property {() => number} [random]  a number in [0, 1) for the jitter
 */

/** Close code: the token expired; the client reconnects at once with a fresh one. */
export const CLOSE_TOKEN_EXPIRED = 4001;
/** Close code: the server disconnected the client on purpose; the client stops. */
export const CLOSE_DISCONNECTED = 4002;

const DEFAULTS = {
  backoffInitial: 500,
  backoffMax: 30000,
  backoffMultiplier: 2,
  jitter: 100,
  jitterFraction: 0.5,
  dialTimeout: 10000,
};

/** Error of an {"op":"error"} reply (403, 422, 429, 503, ...; docs/protocol.md). */
export class ServerError extends Error {
  /** @param {number} code @param {string} reason */
  constructor(code, reason) {
    super(`wsgate: gateway error ${code}: ${reason}`);
    this.name = "ServerError";
    this.code = code;
    this.reason = reason;
  }
}

/** The client is closed (close(), a 4002 close). */
export class ClosedError extends Error {
  constructor(message = "wsgate: client closed") {
    super(message);
    this.name = "ClosedError";
  }
}

/**
 * An open connection ended; the client reconnects by itself (except after a 4002). Reported
 * through onError, with the close code and reason the browser saw (1006 when the connection
 * dropped without a close frame; docs/protocol.md says what each code means).
 */
export class ConnectionLostError extends Error {
  /** @param {string} url @param {number} code @param {string} reason */
  constructor(url, code, reason) {
    super(`wsgate: connection to ${url} lost (close ${code}${reason ? " " + reason : ""})`);
    this.name = "ConnectionLostError";
    /** the close code */
    this.code = code;
    /** the close reason, "" when the close frame had none */
    this.reason = reason;
  }
}

/**
 * A publish without id was sent and the connection dropped before the answer: it may or may not
 * have been published, and without an id it cannot be sent again safely.
 */
export class UnconfirmedError extends Error {
  constructor() {
    super("wsgate: connection lost before the gateway confirmed the publish (no id to retry it safely)");
    this.name = "UnconfirmedError";
  }
}

/**
 * The wait before reconnect attempt `step` (0 for the first): backoffInitial × backoffMultiplier^step
 * capped at backoffMax, moved by (2r − 1) × max(jitter, jitterFraction × delay), kept within
 * [0, backoffMax].
 * @param {Options} opts @param {number} step @param {number} r in [0, 1)
 * @returns {number} milliseconds
 */
export function backoffDelay(opts, step, r) {
  const o = { ...DEFAULTS, ...opts };
  let d = Math.min(o.backoffMax, o.backoffInitial * Math.pow(o.backoffMultiplier, step));
  if (!Number.isFinite(d)) d = o.backoffMax;
  const j = Math.max(Math.max(0, o.jitter), Math.max(0, o.jitterFraction) * d);
  return Math.min(o.backoffMax, Math.max(0, d + (2 * r - 1) * j));
}

/**
 * url with its token query parameter set.
 * @param {string} url @param {string} token
 */
export function withToken(url, token) {
  const u = new URL(url);
  u.searchParams.set("token", token);
  return u.toString();
}

const CHANNEL = /^[A-Za-z0-9_\-.:@/]{1,128}$/;

/**
 * Whether name is a channel name the gateway accepts.
 * @param {string} name
 */
export function validChannel(name) {
  return typeof name === "string" && CHANNEL.test(name);
}

/**
 * Opens a client and starts connecting. Subscriptions and publishes made before the connection
 * opens are sent when it does.
 * @param {string} url  ws:// or wss:// URL of the gateway
 * @param {Options} [options]
 * @returns {Client}
 */
export function connect(url, options = {}) {
  return new Client(url, options);
}

export class Client {
  /** @param {string} url @param {Options} [options] */
  constructor(url, options = {}) {
    /** @private */ this._o = { ...DEFAULTS, ...options };
    const o = this._o;
    const urls = [url, ...(o.urls || [])];
    if (o.healthURLs && o.healthURLs.length !== urls.length) {
      throw new Error(`wsgate: ${o.healthURLs.length} healthURLs for ${urls.length} WebSocket URLs`);
    }
    /** @private */ this._eps = urls.map((u, i) => ({ url: u, health: o.healthURLs ? o.healthURLs[i] : o.healthURL || "" }));
    /** @private */ this._WS = o.WebSocket || globalThis.WebSocket;
    /** @private */ this._fetch = o.fetch || ((u, init) => globalThis.fetch(u, init));
    /** @private */ this._schedule = o.schedule || ((fn, ms) => {
      const t = setTimeout(fn, ms);
      return () => clearTimeout(t);
    });
    /** @private */ this._random = o.random || Math.random;
    /** @private @type {Map<string, Sub>} */ this._subs = new Map();
    /** @private @type {Pub[]} */ this._pubs = [];
    /** @private @type {Conn | null} */ this._conn = null; // open connection
    /** @private */ this._gen = 0; // attempts made (each connection's generation)
    /** @private */ this._step = 0; // backoff step
    /** @private */ this._next = 0; // index in _eps of the next attempt
    /** @private */ this._cancelWait = null; // cancels the pending backoff wait or attempt
    /** @private @type {State} */ this._state = "connecting";
    /** @private */ this._closing = false;
    /** @private */ this._immediate = false; // the last reconnect was an immediate one after a 4001
    /** @type {Error | null} why the client stopped by itself (4002), null otherwise */
    this.error = null;
    let ready;
    /** Resolves when the first connection opens; rejects if the client closes before. */
    this.ready = new Promise((resolve, reject) => (ready = { resolve, reject }));
    this.ready.catch(() => {}); // nobody has to listen
    /** @private */ this._ready = ready;
    this._notify("connecting");
    this._attempt(false);
  }

  /** @returns {State} */
  get state() {
    return this._state;
  }

  /**
   * Delivers channel's messages to handler, from the next one published, each once, in seq order.
   * Resolves when the gateway has answered (or at once while disconnected: the subscription is
   * made on the next connection); rejects with the gateway's refusal (e.g. ServerError 429).
   * @param {string} channel @param {(message: Message) => void} handler
   * @returns {Promise<void>}
   */
  subscribe(channel, handler) {
    if (!validChannel(channel)) return Promise.reject(new Error(`wsgate: invalid channel name ${JSON.stringify(channel)}`));
    if (typeof handler !== "function") return Promise.reject(new TypeError("wsgate: handler must be a function"));
    if (this._closing) return Promise.reject(new ClosedError());
    if (this._subs.has(channel)) return Promise.reject(new Error(`wsgate: already subscribed to ${channel}`));
    /** @type {Sub} */
    const sub = { channel, handler, pos: null };
    this._subs.set(channel, sub);
    if (!this._conn) return Promise.resolve();
    return new Promise((resolve, reject) => this._subscribeOn(this._conn, sub, { resolve, reject }));
  }

  /**
   * Stops the delivery of channel's messages at once. Resolves when the gateway has answered.
   * @param {string} channel
   * @returns {Promise<void>}
   */
  unsubscribe(channel) {
    if (this._closing) return Promise.reject(new ClosedError());
    if (!this._subs.delete(channel)) return Promise.reject(new Error(`wsgate: not subscribed to ${channel}`));
    const c = this._conn;
    if (!c) return Promise.resolve();
    return new Promise((resolve) => {
      c.reqs.push({ unsub: true, channel, since: false, sub: null, waiter: { resolve, reject: () => resolve() } });
      c.ws.send(JSON.stringify({ op: "unsubscribe", channel }));
    });
  }

  /**
   * Publishes data (any JSON value) to channel and resolves with the gateway's answer (the
   * gateway must run with -client-publish). While disconnected it waits for the next connection.
   * With an id, a publish whose answer was lost with the connection is sent again on the next one
   * (the gateway's dedup answers duplicate if it got through); without one it rejects with
   * UnconfirmedError.
   * @param {string} channel @param {any} data
   * @param {{id?: string, signal?: AbortSignal}} [opts]
   * @returns {Promise<PublishResult>}
   */
  publish(channel, data, opts = {}) {
    const id = opts.id || "";
    if (!validChannel(channel)) return Promise.reject(new Error(`wsgate: invalid channel name ${JSON.stringify(channel)}`));
    if (new TextEncoder().encode(id).length > 128) return Promise.reject(new Error("wsgate: id over 128 bytes"));
    const json = data === undefined ? undefined : JSON.stringify(data);
    if (json === undefined) return Promise.reject(new TypeError("wsgate: data must be a JSON value"));
    if (this._closing) return Promise.reject(new ClosedError());
    return new Promise((resolve, reject) => {
      /** @type {Pub} */
      const p = { channel, id, gen: 0, frame: "", resolve, reject };
      p.frame = `{"op":"publish","channel":"${channel}"${id ? `,"id":${JSON.stringify(id)}` : ""},"data":${json}}`;
      if (opts.signal) {
        if (opts.signal.aborted) return reject(opts.signal.reason);
        opts.signal.addEventListener("abort", () => this._settle(p, null, opts.signal?.reason), { once: true });
      }
      this._pubs.push(p);
      if (this._conn) this._send(this._conn, p);
    });
  }

  /** Closes the connection (1000) and stops the client; pending promises reject with ClosedError. */
  close() {
    if (this._closing) return;
    this._closing = true;
    this._stop(null);
  }

  // --- connection life -------------------------------------------------------------------------

  /** @private @param {boolean} now attempt without waiting (after a 4001) */
  _reconnect(now) {
    if (now) {
      this._attempt(true);
      return;
    }
    const d = backoffDelay(this._o, this._step++, this._random());
    this._cancelWait = this._schedule(() => {
      this._cancelWait = null;
      this._attempt(true);
    }, d);
  }

  /** @private @param {boolean} probe */
  async _attempt(probe) {
    const gen = ++this._gen;
    const ep = this._eps[this._next];
    let cancelled = false;
    const ac = new AbortController();
    const cancelTimer = this._schedule(() => ac.abort(new Error("timed out")), this._o.dialTimeout);
    this._cancelWait = () => {
      cancelled = true;
      ac.abort(new ClosedError());
    };
    const fail = (/** @type {any} */ err) => {
      cancelTimer();
      if (cancelled || this._closing) return;
      this._cancelWait = null;
      this._error(err instanceof Error ? err : new Error(String(err)));
      this._next = (this._next + 1) % this._eps.length;
      this._reconnect(false);
    };
    let url = ep.url;
    try {
      if (probe && ep.health) {
        const r = await this._fetch(ep.health, { signal: ac.signal });
        if (!r.ok) throw new Error(`wsgate: health probe ${ep.health}: HTTP ${r.status}`);
      }
      if (this._o.token) {
        const tok = await this._o.token();
        if (tok) url = withToken(url, tok); // "" or null: connect without one
      }
    } catch (err) {
      return fail(err);
    }
    if (cancelled || this._closing || gen !== this._gen) return;
    let ws;
    try {
      ws = new this._WS(url);
    } catch (err) {
      return fail(err);
    }
    /** @type {Conn} */
    const c = { ws, gen, url: ep.url, reqs: [], open: false, gotFrame: false };
    this._cancelWait = () => {
      cancelled = true;
      ws.close(1000);
    };
    ac.signal.addEventListener("abort", () => {
      if (!c.open) ws.close(1000);
    });
    ws.onopen = () => {
      cancelTimer();
      if (cancelled || this._closing) return ws.close(1000);
      this._cancelWait = null;
      c.open = true;
      this._attach(c);
    };
    ws.onmessage = (ev) => {
      if (this._conn !== c) return;
      if (!c.gotFrame) {
        c.gotFrame = true;
        this._step = 0; // the gateway serves again: the next reconnect starts from the first delay
      }
      if (typeof ev.data === "string") this._handle(c, ev.data);
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (ev) => {
      if (!c.open) return fail(new Error(`wsgate: could not connect to ${ep.url} (close ${ev.code})`));
      this._lost(c, ev.code, ev.reason);
    };
  }

  /** @private @param {Conn} c */
  _attach(c) {
    this._conn = c;
    for (const sub of this._subs.values()) this._subscribeOn(c, sub, null);
    this._pubs = this._pubs.filter((p) => {
      if (p.gen !== 0 && !p.id) {
        p.reject(new UnconfirmedError());
        return false;
      }
      return true;
    });
    for (const p of this._pubs) this._send(c, p);
    this._notify("connected");
    this._ready.resolve();
  }

  /** @private @param {Conn} c @param {number} code @param {string} reason */
  _lost(c, code, reason) {
    if (this._conn === c) this._conn = null;
    for (const r of c.reqs) r.waiter?.resolve(); // redone on the next connection
    c.reqs = [];
    if (this._closing) return;
    if (code === CLOSE_DISCONNECTED) {
      this.error = new ClosedError(`wsgate: disconnected by the server (close ${code} ${JSON.stringify(reason)})`);
      this._closing = true;
      this._stop(this.error);
      return;
    }
    this._error(new ConnectionLostError(c.url, code, reason));
    // A 4001 reconnects at once, unless the last reconnect was that too and its connection
    // received nothing: a token refused at once must not make the client spin.
    this._immediate = code === CLOSE_TOKEN_EXPIRED && (c.gotFrame || !this._immediate);
    this._next = (this._next + 1) % this._eps.length;
    this._notify("reconnecting");
    this._reconnect(this._immediate);
  }

  /** @private @param {Error | null} err */
  _stop(err) {
    this._cancelWait?.();
    this._cancelWait = null;
    const c = this._conn;
    this._conn = null;
    if (c) {
      for (const r of c.reqs) r.waiter?.resolve();
      c.reqs = [];
      c.ws.close(1000);
    }
    const closed = err || new ClosedError();
    for (const p of this._pubs.splice(0)) p.reject(closed);
    this._ready.reject(closed);
    this._notify("closed");
  }

  // --- frames ----------------------------------------------------------------------------------

  /** @private @param {Conn} c @param {Sub} sub @param {Waiter | null} waiter */
  _subscribeOn(c, sub, waiter) {
    const req = { op: "subscribe", channel: sub.channel };
    if (sub.pos) req.since = { seq: sub.pos.seq, epoch: sub.pos.epoch };
    c.reqs.push({ unsub: false, channel: sub.channel, since: !!sub.pos, sub, waiter });
    c.ws.send(JSON.stringify(req));
  }

  /** @private @param {Conn} c @param {Pub} p */
  _send(c, p) {
    p.gen = c.gen;
    c.ws.send(p.frame);
  }

  /** @private @param {Conn} c @param {string} text */
  _handle(c, text) {
    let f;
    try {
      f = JSON.parse(text);
    } catch (err) {
      return this._error(new Error("wsgate: unreadable frame from the gateway"));
    }
    switch (f.op) {
      case "message":
        return this._onMessage(c, f);
      case "subscribed":
        return this._onSubscribed(c, f);
      case "unsubscribed": {
        const k = c.reqs.findIndex((r) => r.unsub && r.channel === f.channel);
        if (k >= 0) c.reqs.splice(k, 1)[0].waiter?.resolve();
        return;
      }
      case "published":
      case "duplicate": {
        const p = this._pubs.find((p) => p.gen === c.gen && p.channel === f.channel && p.id === (f.id || ""));
        if (p) this._settle(p, { seq: f.op === "duplicate" ? 0 : f.seq, duplicate: f.op === "duplicate" }, null);
        return;
      }
      case "broadcast":
        return this._call(this._o.onBroadcast, { channel: "", seq: 0, epoch: "", id: f.id, data: f.data });
      case "error":
        return this._onError(c, new ServerError(f.code, f.reason));
    }
  }

  /** @private */
  _onMessage(/** @type {Conn} */ c, /** @type {any} */ f) {
    if (c.reqs.some((r) => r.channel === f.channel)) return; // before an answer: not ours
    const sub = this._subs.get(f.channel);
    if (!sub || (sub.pos && f.seq <= sub.pos.seq)) return; // unsubscribed, or a duplicate
    sub.pos = { seq: f.seq, epoch: sub.pos ? sub.pos.epoch : "" };
    /** @type {Message} */
    const m = { channel: f.channel, seq: f.seq, epoch: sub.pos.epoch, data: f.data };
    if (f.id !== undefined) m.id = f.id;
    this._call(sub.handler, m);
  }

  /** @private */
  _onSubscribed(/** @type {Conn} */ c, /** @type {any} */ f) {
    const to = { seq: f.seq, epoch: f.epoch };
    const failed = f.recovered === false;
    const k = c.reqs.findIndex((r) => r.channel === f.channel);
    if (k >= 0) {
      const r = c.reqs[k];
      if (r.unsub) return; // a notice for the subscription being unsubscribed
      c.reqs.splice(k, 1);
      if (this._subs.get(f.channel) === r.sub && (!r.since || failed)) {
        r.sub.pos = to;
        if (r.since) this._call(this._o.onRecoveryFailed, f.channel);
      }
      r.waiter?.resolve();
      return;
    }
    const sub = this._subs.get(f.channel);
    if (!sub) return;
    sub.pos = to; // the numbering got its first epoch, or restarted
    if (failed) this._call(this._o.onRecoveryFailed, f.channel);
  }

  /** @private @param {Conn} c @param {ServerError} e */
  _onError(c, e) {
    let k = -1;
    if (e.code === 429) k = c.reqs.findIndex((r) => !r.unsub);
    else if (e.code === 404) k = c.reqs.findIndex((r) => r.unsub);
    else if (e.code !== 403 && e.code !== 503) k = c.reqs.length > 0 ? 0 : -1;
    if (k >= 0) {
      const r = c.reqs.splice(k, 1)[0];
      if (e.code === 404) return r.waiter?.resolve();
      if (!r.unsub && this._subs.get(r.channel) === r.sub) {
        this._subs.delete(r.channel);
        if (!r.waiter) this._error(new Error(`wsgate: resubscribe to ${r.channel} refused: ${e.message}`));
      }
      return r.waiter?.reject(e);
    }
    if (e.code === 503) {
      // A refused publish was not numbered; which one is unknown: send those with an id again
      // after a delay (dedup answers duplicate for the others), or fail the oldest without.
      const withID = this._pubs.filter((p) => p.gen === c.gen && p.id);
      if (withID.length > 0) {
        this._schedule(() => {
          if (this._conn === c) for (const p of withID) if (this._pubs.includes(p)) c.ws.send(p.frame);
        }, backoffDelay(this._o, 0, this._random()));
        return;
      }
    }
    const p = this._pubs.find((p) => p.gen === c.gen);
    if (p) return this._settle(p, null, e);
    this._error(e);
  }

  // --- helpers ---------------------------------------------------------------------------------

  /** @private @param {Pub} p @param {PublishResult | null} res @param {any} err */
  _settle(p, res, err) {
    const i = this._pubs.indexOf(p);
    if (i < 0) return;
    this._pubs.splice(i, 1);
    if (res) p.resolve(res);
    else p.reject(err);
  }

  /** @private @param {State} s */
  _notify(s) {
    this._state = s;
    this._call(this._o.onState, s);
  }

  /** @private @param {Error} err */
  _error(err) {
    if (this._o.onError) this._call(this._o.onError, err);
  }

  /** Calls user code; an exception goes to onError (or the console), never into the client. @private */
  _call(/** @type {Function | undefined} */ fn, /** @type {any} */ arg) {
    if (!fn) return;
    try {
      fn(arg);
    } catch (err) {
      if (fn !== this._o.onError && this._o.onError) this._call(this._o.onError, err);
      else console.error("wsgate: a callback threw", err);
    }
  }
}

/**
 * @typedef {{resolve: () => void, reject: (err: any) => void}} Waiter
 * @typedef {{channel: string, handler: (m: Message) => void, pos: {seq: number, epoch: string} | null}} Sub
 * @typedef {{unsub: boolean, channel: string, since: boolean, sub: Sub | null, waiter: Waiter | null}} Req
 * @typedef {{ws: WebSocket, gen: number, url: string, reqs: Req[], open: boolean, gotFrame: boolean}} Conn
 * @typedef {{channel: string, id: string, gen: number, frame: string,
 *            resolve: (r: PublishResult) => void, reject: (err: any) => void}} Pub
 */
