// Unit tests of wsgate.js with Node's test runner (`node --test`): a fake WebSocket and a fake
// clock stand in for the browser, so every verdict is about frames and delays, never about time.
// The Go test TestJSClient runs this file when node is installed.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  connect, backoffDelay, withToken, validChannel, ServerError, UnconfirmedError, ClosedError,
  CLOSE_DISCONNECTED, CLOSE_TOKEN_EXPIRED, ConnectionLostError,
} from "./wsgate.js";

const DIAL = 99999; // the dial timeout the tests use, to tell its timer from backoff waits

/** A fake browser WebSocket class with its own list of instances. */
function fakeWebSocket() {
  class FakeWS {
    static all = [];
    constructor(url) {
      this.url = url;
      this.sent = [];
      this.opened = false;
      this.closed = null;
      FakeWS.all.push(this);
    }
    send(s) {
      if (this.closed) throw new Error("send on a closed socket");
      this.sent.push(JSON.parse(s));
    }
    close(code = 1000, reason = "") {
      if (this.closed) return;
      this.closed = { code, reason };
      const ev = { code: this.opened ? code : 1006, reason };
      queueMicrotask(() => this.onclose?.(ev));
    }
    // The gateway's side.
    open() {
      this.opened = true;
      this.onopen?.();
    }
    recv(frame) {
      this.onmessage?.({ data: JSON.stringify(frame) });
    }
    drop(code, reason = "") {
      this.closed = { code, reason };
      this.onclose?.({ code, reason });
    }
  }
  return FakeWS;
}

/** A fake clock: schedule() records; fire() runs the pending backoff waits. */
function fakeClock() {
  const timers = [];
  return {
    timers,
    schedule(fn, ms) {
      const t = { fn, ms, live: true };
      timers.push(t);
      return () => (t.live = false);
    },
    /** The delays of the live backoff waits. */
    waits() {
      return timers.filter((t) => t.live && t.ms !== DIAL).map((t) => t.ms);
    },
    fire() {
      const due = timers.filter((t) => t.live && t.ms !== DIAL);
      assert.equal(due.length, 1, "one backoff wait pending");
      due[0].live = false;
      due[0].fn();
      return due[0].ms;
    },
  };
}

const settle = () => new Promise((r) => setImmediate(r));

function setup(extra = {}) {
  const WS = fakeWebSocket();
  const clock = fakeClock();
  const got = { msgs: [], failed: [], states: [], errors: [] };
  const client = connect("ws://gw.test/", {
    WebSocket: WS, schedule: clock.schedule, random: () => 0.5, dialTimeout: DIAL,
    onState: (s) => got.states.push(s),
    onRecoveryFailed: (ch) => got.failed.push(ch),
    onError: (e) => got.errors.push(e),
    ...extra,
  });
  return { WS, clock, got, client, handler: (m) => got.msgs.push(m) };
}

test("backoffDelay: 500 ms ± jitter, doubling, capped at 30 s", () => {
  const nominal = [0, 1, 2, 3, 4, 5, 6, 7].map((s) => backoffDelay({}, s, 0.5));
  assert.deepEqual(nominal, [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000]);
  assert.equal(backoffDelay({}, 0, 0), 250);
  assert.equal(backoffDelay({ jitterFraction: 0 }, 0, 0), 400); // at least ±100 ms
  assert.equal(backoffDelay({ jitterFraction: 0 }, 0, 1), 600);
  assert.equal(backoffDelay({}, 20, 0.999999), 30000); // the cap holds jitter included
  assert.equal(backoffDelay({ backoffInitial: 1000, backoffMultiplier: 3, backoffMax: 5000, jitter: 0, jitterFraction: 0 }, 2, 0), 5000);
  assert.equal(backoffDelay({}, 5000, 0.5), 30000);
});

test("withToken and validChannel", () => {
  assert.equal(withToken("ws://h:1/p?a=1", "x y"), "ws://h:1/p?a=1&token=x+y");
  assert.equal(withToken("ws://h:1/?token=old", "new"), "ws://h:1/?token=new");
  assert.ok(validChannel("prices:EURUSD") && validChannel("user/42") && !validChannel("") && !validChannel("a b"));
  assert.ok(!validChannel("x".repeat(129)));
});

test("subscribe, dedup by seq, resubscribe with since, recovery failed", async () => {
  const { WS, clock, got, client, handler } = setup();
  const ws0 = WS.all[0];
  ws0.open();
  await client.ready;
  const p = client.subscribe("news", handler);
  assert.deepEqual(ws0.sent, [{ op: "subscribe", channel: "news" }]);
  ws0.recv({ op: "subscribed", channel: "news", seq: 5, epoch: "E1" });
  await p;
  for (const seq of [6, 7, 7, 6]) ws0.recv({ op: "message", channel: "news", seq, data: { n: seq } });
  assert.deepEqual(got.msgs.map((m) => m.seq), [6, 7]);
  assert.deepEqual(got.msgs[0], { channel: "news", seq: 6, epoch: "E1", data: { n: 6 } });

  ws0.drop(1006);
  assert.equal(client.state, "reconnecting");
  assert.equal(clock.fire(), 500);
  const ws1 = WS.all[1];
  ws1.open();
  assert.deepEqual(ws1.sent, [{ op: "subscribe", channel: "news", since: { seq: 7, epoch: "E1" } }]);
  ws1.recv({ op: "subscribed", channel: "news", seq: 9, epoch: "E1", recovered: true });
  for (const seq of [7, 8, 9]) ws1.recv({ op: "message", channel: "news", seq, id: `m${seq}`, data: seq });
  assert.deepEqual(got.msgs.map((m) => m.seq), [6, 7, 8, 9]);
  assert.equal(got.msgs[2].id, "m8");

  ws1.drop(1012); // a restarted single node: history and epoch gone
  assert.equal(clock.fire(), 500, "a served connection starts the delays over");
  const ws2 = WS.all[2];
  ws2.open();
  assert.deepEqual(ws2.sent[0].since, { seq: 9, epoch: "E1" });
  ws2.recv({ op: "subscribed", channel: "news", seq: 0, epoch: "E2", recovered: false });
  ws2.recv({ op: "message", channel: "news", seq: 1, data: "new" });
  assert.deepEqual(got.failed, ["news"]);
  assert.deepEqual(got.msgs.at(-1), { channel: "news", seq: 1, epoch: "E2", data: "new" });
  assert.deepEqual(got.states, ["connecting", "connected", "reconnecting", "connected", "reconnecting", "connected"]);
  client.close();
});

test("a channel's first epoch and a restart under the subscription arrive as notices", () => {
  const { WS, got, client, handler } = setup();
  const ws = WS.all[0];
  ws.open();
  client.subscribe("c", handler);
  ws.recv({ op: "subscribed", channel: "c", seq: 0, epoch: "" });
  ws.recv({ op: "subscribed", channel: "c", seq: 0, epoch: "FIRST" });
  ws.recv({ op: "message", channel: "c", seq: 1, data: 1 });
  ws.recv({ op: "subscribed", channel: "c", seq: 0, epoch: "AGAIN", recovered: false });
  ws.recv({ op: "message", channel: "c", seq: 1, data: 2 });
  assert.deepEqual(got.msgs.map((m) => [m.seq, m.epoch]), [[1, "FIRST"], [1, "AGAIN"]]);
  assert.deepEqual(got.failed, ["c"]);
  client.close();
});

test("backoff doubles while attempts fail, rotating through the URLs", () => {
  const { WS, clock, client } = setup({ urls: ["ws://other.test/"] });
  WS.all[0].open();
  WS.all[0].drop(1001);
  const delays = [];
  for (let i = 0; i < 4; i++) {
    delays.push(clock.fire());
    WS.all.at(-1).drop(1006); // refused before opening
  }
  assert.deepEqual(delays, [500, 1000, 2000, 4000]);
  assert.deepEqual(WS.all.map((w) => new URL(w.url).host), ["gw.test", "other.test", "gw.test", "other.test", "gw.test"]);
  client.close();
  assert.deepEqual(clock.waits(), []);
});

test("close codes: 4002 stops, 4001 reconnects at once with a fresh token", async () => {
  let n = 0;
  const { WS, clock, got, client } = setup({ token: async () => `t${++n}` });
  await settle();
  WS.all[0].open();
  WS.all[0].recv({ op: "broadcast", data: "served" });
  WS.all[0].drop(CLOSE_TOKEN_EXPIRED, "token expired");
  await settle();
  const lost = got.errors.at(-1);
  assert.ok(lost instanceof ConnectionLostError);
  assert.equal(lost.code, CLOSE_TOKEN_EXPIRED);
  assert.equal(lost.reason, "token expired");
  assert.equal(WS.all.length, 2);
  assert.deepEqual(clock.waits(), []);
  assert.deepEqual(WS.all.map((w) => new URL(w.url).searchParams.get("token")), ["t1", "t2"]);
  WS.all[1].open();
  WS.all[1].drop(CLOSE_TOKEN_EXPIRED); // refused at once after an immediate retry: back off
  await settle();
  assert.deepEqual(clock.waits(), [500]);
  clock.fire();
  await settle();
  WS.all[2].open();
  WS.all[2].drop(CLOSE_DISCONNECTED, "bye");
  await settle();
  assert.equal(client.state, "closed");
  assert.ok(client.error instanceof ClosedError);
  assert.deepEqual(clock.waits(), []);
  assert.equal(WS.all.length, 3);
  assert.equal(got.states.at(-1), "closed");
  await assert.rejects(client.subscribe("x", () => {}), ClosedError);
});

test("publish: retried with its id after a reconnect, unconfirmed without one", async () => {
  const { WS, clock, client } = setup();
  const ws0 = WS.all[0];
  const early = client.publish("orders", { n: 1 }, { id: "o-1" }); // queued until open
  ws0.open();
  assert.deepEqual(ws0.sent, [{ op: "publish", channel: "orders", id: "o-1", data: { n: 1 } }]);
  const noID = client.publish("orders", [2]);
  ws0.drop(1006); // both answers lost
  clock.fire();
  const ws1 = WS.all[1];
  ws1.open();
  await assert.rejects(noID, UnconfirmedError);
  assert.deepEqual(ws1.sent, [{ op: "publish", channel: "orders", id: "o-1", data: { n: 1 } }]);
  ws1.recv({ op: "duplicate", channel: "orders", id: "o-1" });
  assert.deepEqual(await early, { seq: 0, duplicate: true });

  const next = client.publish("orders", "x");
  ws1.recv({ op: "published", channel: "orders", seq: 2 });
  assert.deepEqual(await next, { seq: 2, duplicate: false });
  const refused = client.publish("orders", "y");
  ws1.recv({ op: "error", code: 403, reason: "publishing from clients is disabled" });
  await assert.rejects(refused, (e) => e instanceof ServerError && e.code === 403);
  const ac = new AbortController();
  const aborted = client.publish("orders", "z", { signal: ac.signal });
  ac.abort(new Error("gave up"));
  await assert.rejects(aborted, /gave up/);
  const pending = client.publish("orders", "w");
  client.close();
  await assert.rejects(pending, ClosedError);
});

test("subscribe refused, unsubscribe, and what arrives before an answer", async () => {
  const { WS, got, client, handler } = setup();
  const ws = WS.all[0];
  ws.open();
  const a = client.subscribe("a", handler);
  const b = client.subscribe("b", handler);
  ws.recv({ op: "subscribed", channel: "a", seq: 0, epoch: "E" });
  ws.recv({ op: "error", code: 429, reason: "too many channels (limit 1)" });
  await a;
  await assert.rejects(b, (e) => e.code === 429);
  await assert.rejects(client.subscribe("a", handler), /already subscribed/);
  const u = client.unsubscribe("a");
  ws.recv({ op: "message", channel: "a", seq: 1, data: 1 }); // sent before the unsubscribe was read
  ws.recv({ op: "unsubscribed", channel: "a" });
  await u;
  const again = client.subscribe("a", handler);
  ws.recv({ op: "subscribed", channel: "a", seq: 1, epoch: "E" });
  await again;
  ws.recv({ op: "message", channel: "a", seq: 2, data: 2 });
  assert.deepEqual(got.msgs.map((m) => m.seq), [2]);
  client.close();
});

test("a health probe that fails counts as a failed attempt", async () => {
  const answers = [503, 503, 200];
  const probes = [];
  const { WS, clock, client } = setup({
    healthURL: "http://admin.test/healthz",
    fetch: async (url) => {
      probes.push(url);
      const status = answers.shift();
      return { ok: status === 200, status };
    },
  });
  WS.all[0].open(); // the first attempt is not probed
  assert.equal(probes.length, 0);
  WS.all[0].recv({ op: "broadcast", data: 1 });
  WS.all[0].drop(1001);
  const delays = [];
  for (let i = 0; i < 3; i++) {
    delays.push(clock.fire());
    await settle();
  }
  assert.deepEqual(delays, [500, 1000, 2000]);
  assert.equal(probes.length, 3);
  assert.equal(WS.all.length, 2, "dialled only after a healthy answer");
  client.close();
});

test("a handler that throws does not stop the deliveries", () => {
  const { WS, got, client } = setup();
  const ws = WS.all[0];
  ws.open();
  client.subscribe("t", (m) => {
    if (m.seq === 1) throw new Error("boom");
    got.msgs.push(m);
  });
  ws.recv({ op: "subscribed", channel: "t", seq: 0, epoch: "E" });
  ws.recv({ op: "message", channel: "t", seq: 1, data: 1 });
  ws.recv({ op: "message", channel: "t", seq: 2, data: 2 });
  assert.deepEqual(got.msgs.map((m) => m.seq), [2]);
  assert.match(got.errors.at(-1).message, /boom/);
  client.close();
});

test("an empty token connects without ?token=", async () => {
  let tok = "";
  const { WS, clock, client } = setup({ token: () => tok });
  await settle();
  assert.equal(new URL(WS.all[0].url).searchParams.has("token"), false);
  WS.all[0].drop(1006); // refused before opening (a 401)
  await settle();
  tok = "typed-later";
  clock.fire();
  await settle();
  assert.equal(new URL(WS.all[1].url).searchParams.get("token"), "typed-later");
  client.close();
});
