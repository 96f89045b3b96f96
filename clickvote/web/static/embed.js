/*! ClickVote embed: <click-vote key="pb_..." group="..." item="..." variant="like|updown|stars|reactions"></click-vote>
 * Its light DOM (e.g. a server-rendered count) shows only where this script does not run.
 * One script tag, no dependencies. Speaks Engine.IO v4 / Socket.IO v5 over a WebSocket to the
 * server this script was loaded from, or over HTTP long-polling where WebSockets are missing or
 * blocked (some proxies). MIT licence. */
(function () {
  "use strict";
  if (!window.customElements || customElements.get("click-vote")) return;

  var script = document.currentScript ||
    document.querySelector('script[src$="/embed.js"],script[src*="/embed.js?"]');
  var ORIGIN = new URL(script ? script.src : location.href, location.href).origin;
  var STORE = "clickvote:";
  // a vote, login or get-votes met by storage_unavailable is sent again after its retryAfter
  // (about a second), up to this many times in a row
  var STORAGE_TRIES = 30;
  function storageRetry(err, tries) {
    return !!err && err.code === "storage_unavailable" && tries <= STORAGE_TRIES;
  }
  function retryMs(err) { return 1000 * (+err.retryAfter || 1); }

  function rid() {
    var a = new Uint8Array(12);
    (window.crypto || window.msCrypto).getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }
  function esc(t) {
    return String(t).replace(/[&<>"']/g, function (c) { return "&#" + c.charCodeAt(0) + ";"; });
  }
  function lsGet(k) { try { return localStorage.getItem(STORE + k); } catch (e) { return null; } }
  function lsSet(k, v) { try { localStorage.setItem(STORE + k, v); } catch (e) { /* private mode */ } }

  // ---------------------------------------------------- Engine.IO long-polling, WebSocket-shaped
  // What the connection below needs of a WebSocket (readyState, send, close, onmessage per
  // packet, onclose), over HTTP: one GET waiting for packets at a time, one POST at a time
  // carrying what was sent meanwhile; packets joined by the record separator.
  function PollingSocket(base) {
    this.base = base; this.readyState = 0; this.out = []; this.posting = false; this.sid = "";
    this.poll();
  }
  PollingSocket.prototype.url = function () {
    return this.base + (this.sid ? "&sid=" + encodeURIComponent(this.sid) : "") + "&t=" + Date.now().toString(36);
  };
  PollingSocket.prototype.poll = function () {
    var self = this;
    fetch(this.url(), { credentials: "omit", cache: "no-store" })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.text(); })
      .then(function (body) {
        var packets = body.split("\x1e");
        for (var i = 0; i < packets.length && self.readyState !== 3; i++) {
          var p = packets[i];
          if (p === "1") return self.close();
          if (!self.sid && p.charAt(0) === "0") { self.sid = JSON.parse(p.slice(1)).sid; self.readyState = 1; }
          if (self.onmessage) self.onmessage({ data: p });
        }
        if (self.readyState === 1) self.poll();
      })
      .catch(function () { self.close(); });
  };
  PollingSocket.prototype.send = function (text) {
    if (this.readyState !== 1) return;
    this.out.push(text); this.flush();
  };
  PollingSocket.prototype.flush = function () {
    if (this.posting || !this.out.length) return;
    var self = this, body = this.out.join("\x1e");
    this.out = []; this.posting = true;
    fetch(this.url(), { method: "POST", body: body, credentials: "omit", headers: { "Content-Type": "text/plain;charset=UTF-8" } })
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); self.posting = false; self.flush(); })
      .catch(function () { self.close(); });
  };
  PollingSocket.prototype.close = function () {
    if (this.readyState === 3) return;
    this.readyState = 3;
    if (this.onclose) this.onclose({});
  };

  // ---------------------------------------------------------------- proof of work
  // Where the environment asks for it, a first vote carries a solved challenge: a counter such
  // that SHA-256(challenge + counter) starts with `bits` zero bits, found in a Web Worker
  // (crypto.subtle, so a secure context: HTTPS or localhost) without blocking the page.
  var WORKER = "onmessage=function(e){var c=e.data.challenge,bits=e.data.bits,enc=new TextEncoder(),n=0;" +
    "function zeros(b){var z=0;for(var i=0;i<b.length;i++){if(b[i]===0){z+=8;continue}return z+Math.clz32(b[i])-24}return z}" +
    "function step(){var batch=[];for(var i=0;i<256;i++)batch.push(crypto.subtle.digest('SHA-256',enc.encode(c+(n+i))));" +
    "Promise.all(batch).then(function(ds){for(var i=0;i<ds.length;i++)if(zeros(new Uint8Array(ds[i]))>=bits)return postMessage(n+i);" +
    "n+=256;step()})}step()}";
  function solveWork(challenge, bits, cb) {
    var w;
    try { w = new Worker(URL.createObjectURL(new Blob([WORKER], { type: "text/javascript" }))); } catch (e) { cb(null); return; }
    w.onmessage = function (e) { w.terminate(); cb(e.data); };
    w.onerror = function () { w.terminate(); cb(null); };
    w.postMessage({ challenge: challenge, bits: bits });
  }

  // ---------------------------------------------------------------- minimal Socket.IO client
  // One connection per (public key, voter); elements share it and subscribe to events by name.
  // Voter: a signed user id from the page, else an anonymous server-signed voter token kept in
  // localStorage (asked for once from /api/voter-token).
  var conns = {};

  function Conn(key, uid, signature) {
    this.key = key; this.signature = signature; this.anon = !uid;
    this.tokenKey = "voter:" + ORIGIN + ":" + key;
    this.voterToken = this.anon ? lsGet(this.tokenKey) : null;
    this.userId = uid || (this.voterToken ? this.voterToken.split(".")[0] : "");
    this.handlers = {}; this.acks = {}; this.ackId = 0; this.queue = [];
    this.ready = false; this.token = null; this.exp = 0; this.tries = 0; this.wsFails = 0; this.loginTries = 0;
    this.waiting = []; this.work = null; this.asked = false;
    this.open();
  }
  Conn.prototype.open = function () {
    // a WebSocket, unless there is none or two in a row closed without ever opening
    var self = this, useWs = typeof WebSocket === "function" && this.wsFails < 2, opened = false;
    var ws = this.ws = useWs
      ? new WebSocket(ORIGIN.replace(/^http/, "ws") + "/socket.io/?EIO=4&transport=websocket")
      : new PollingSocket(ORIGIN + "/socket.io/?EIO=4&transport=polling");
    var pingTimer = null;
    ws.onopen = function () { opened = true; self.wsFails = 0; };
    function alive(ms) {
      clearTimeout(pingTimer);
      pingTimer = setTimeout(function () { try { ws.close(); } catch (e) { /* closed */ } }, ms);
    }
    ws.onmessage = function (ev) {
      var d = String(ev.data), t = d.charAt(0);
      if (t === "0") {          // engine open
        var o = JSON.parse(d.slice(1)); self.pingMs = o.pingInterval + o.pingTimeout; alive(self.pingMs);
        ws.send("40" + JSON.stringify({ token: self.key + ":" + self.userId }));
      } else if (t === "2") {   // ping
        alive(self.pingMs); ws.send("3");
      } else if (t === "4") {   // socket.io packet: 0 connect, 2 event, 3 ack, 4 connect error
        var p = d.charAt(1), rest = d.slice(2), m = /^\d+/.exec(rest), id = m ? +m[0] : null;
        if (m) rest = rest.slice(m[0].length);
        if (p === "0") { self.tries = 0; self.loginTries = 0; self.login(); }
        else if (p === "4") { self.fire("cv-error", JSON.parse(rest || "{}")); }
        else if (p === "2") { var a = JSON.parse(rest); self.fire(a[0], a[1]); }
        else if (p === "3" && id !== null && self.acks[id]) {
          var cb = self.acks[id]; delete self.acks[id]; cb(JSON.parse(rest)[0]);
        }
      }
    };
    ws.onclose = function () {
      if (useWs && !opened) self.wsFails++;
      clearTimeout(pingTimer); clearTimeout(self.loginTimer); clearTimeout(self.loginRetry);
      self.ready = false; self.token = null;
      for (var k in self.acks) { var cb = self.acks[k]; delete self.acks[k]; cb(null); }
      self.fire("cv-offline", {});
      var wait = Math.min(30000, 500 * Math.pow(2, self.tries++)) * (0.75 + Math.random() / 2);
      setTimeout(function () { self.open(); }, wait);
    };
  };
  Conn.prototype.raw = function (name, data, cb) {
    if (!this.ws || this.ws.readyState !== 1) { if (cb) cb(null); return; }
    var id = "";
    if (cb) { id = ++this.ackId; this.acks[id] = cb; }
    this.ws.send("42" + id + JSON.stringify([name, data]));
  };
  Conn.prototype.login = function () {
    var self = this;
    clearTimeout(this.loginTimer); clearTimeout(this.loginRetry);
    this.loginTimer = setTimeout(function () {
      if (!self.ready) self.fire("cv-error", { message: "ClickVote did not answer", event: "login" });
    }, 10000);
    // the server also emits a "login" event; the acknowledgement is enough here
    this.raw("login", { apiKey: this.key }, function (r) {
      var err = r && r.ok === false && r.error;
      if (err && err.code === "storage_unavailable") { // the database is not answering just now
        if (storageRetry(err, ++self.loginTries)) self.loginRetry = setTimeout(function () { self.login(); }, retryMs(err));
        else self.fire("cv-error", err);
        return;
      }
      if (!r || r.ok === false) return; // other errors arrive as clickvote:error
      self.loginTries = 0;
      self.token = r.token; self.exp = +r.expiration || 0;
      self.pow = +r.proofOfWork || 0; // the environment's proof-of-work bits, 0: none asked
      if (self.exp && self.exp < 1e12) self.exp *= 1000; // seconds or milliseconds
      if (self.anon && !self.voterToken) self.newVoter(); else self.online();
    });
  };
  Conn.prototype.newVoter = function () {
    var self = this;
    function fallback() { // no voter token to be had: an unsigned random id, like the React client
      self.userId = lsGet(self.tokenKey + ":id") || "v_" + rid();
      lsSet(self.tokenKey + ":id", self.userId);
      self.online();
    }
    fetch(ORIGIN + "/api/voter-token?key=" + encodeURIComponent(this.key), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (j) {
        var t = j && (j.token || j.voterToken);
        if (!t) return fallback();
        self.voterToken = t; self.userId = j.voterId || j.userId || t.split(".")[0];
        lsSet(self.tokenKey, t);
        self.online();
      }, fallback);
  };
  // Ask for a challenge and solve it (none asked: nothing to do); `done` once this.work is set.
  // Asked as the connection comes online where login said the environment wants one, and
  // whenever a vote is refused with proof_of_work_required (it was turned on since).
  Conn.prototype.prove = function (done) {
    var self = this;
    this.waiting.push(done);
    if (this.waiting.length > 1) return; // already at work
    this.raw("challenge", { key: this.key }, function (r) {
      if (!r || r.ok === false || !r.difficulty) return self.proved(null);
      solveWork(r.challenge, r.difficulty, function (counter) {
        self.proved(counter === null ? null : { challenge: r.challenge, counter: counter });
      });
    });
  };
  Conn.prototype.proved = function (work) {
    var w = this.waiting; this.work = work; this.waiting = [];
    for (var i = 0; i < w.length; i++) w[i]();
  };
  Conn.prototype.online = function () {
    clearTimeout(this.loginTimer);
    this.ready = true;
    if (!this.asked && this.pow) { this.asked = true; this.prove(function () {}); } // before the first vote
    var q = this.queue; this.queue = [];
    for (var i = 0; i < q.length; i++) this.send(q[i][0], q[i][1], q[i][2]);
    this.fire("cv-online", {});
  };
  // emit an event carrying the login token and voter; queued until ready, refreshes stale tokens
  Conn.prototype.send = function (name, data, cb) {
    if (this.ready && this.exp && this.exp - 300000 < Date.now()) { this.ready = false; this.login(); }
    if (!this.ready) { this.queue.push([name, data, cb]); return; }
    data.token = this.token; data.userId = this.userId;
    if (this.signature) data.signature = this.signature;
    if (this.voterToken) data.voterToken = this.voterToken;
    if (name === "vote" && this.work) data.pow = this.work;
    this.raw(name, data, cb);
  };
  Conn.prototype.on = function (name, fn) { (this.handlers[name] = this.handlers[name] || []).push(fn); };
  Conn.prototype.off = function (name, fn) {
    var h = this.handlers[name] || [], i = h.indexOf(fn);
    if (i >= 0) h.splice(i, 1);
  };
  Conn.prototype.fire = function (name, data) {
    if (name === "clickvote:error") {
      var code = data && data.code;
      if (data && data.event === "login") clearTimeout(this.loginTimer);
      // a stale token or a voter token of a rotated environment: start over
      if (code === "token_expired" || code === "bad_token") { this.ready = false; this.login(); return; }
      if (code === "bad_voter_token" && this.anon) { this.voterToken = null; lsSet(this.tokenKey, ""); this.ready = false; this.login(); return; }
      // the answer says: solved, or waited for the database, and sent again
      if (code === "proof_of_work_required" && data.event === "vote") return;
      if (code === "storage_unavailable" && /^(vote|login|get-votes)$/.test(data.event)) return;
      name = "cv-error";
    }
    var h = (this.handlers[name] || []).slice();
    for (var i = 0; i < h.length; i++) { try { h[i](data); } catch (e) { setTimeout(function () { throw e; }); } }
  };
  function conn(key, uid, signature) {
    var id = key + "\n" + (uid || "") + "\n" + (signature || "");
    return conns[id] || (conns[id] = new Conn(key, uid, signature));
  }

  // ---------------------------------------------------------------- the element
  var ICON = {
    heart: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 21s-7.5-4.6-9.6-9.2C.9 8.4 3 4.5 6.7 4.5c2.1 0 3.6 1.2 4.3 2.4l1 1.4 1-1.4c.7-1.2 2.2-2.4 4.3-2.4 3.7 0 5.8 3.9 4.3 7.3C19.5 16.4 12 21 12 21z"/></svg>',
    up: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 4l8 10h-5v6H9v-6H4z"/></svg>',
    star: '<svg viewBox="0 0 24 24" aria-hidden="true"><path d="M12 2.8l2.8 6 6.5.7-4.9 4.4 1.4 6.4L12 17l-5.8 3.3 1.4-6.4-4.9-4.4 6.5-.7z"/></svg>'
  };
  var CSS =
    ":host{display:inline-block;font:14px/1.2 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:inherit;--cv-accent:#e11d48;--cv-up:#ea580c;--cv-down:#4f46e5;--cv-star:#f59e0b}" +
    ".w{display:inline-flex;align-items:center;gap:.4em;flex-wrap:wrap}" +
    "button{all:unset;box-sizing:border-box;cursor:pointer;display:inline-flex;align-items:center;gap:.35em;padding:.35em .7em;border-radius:999px;border:1px solid rgba(127,127,127,.35);background:rgba(127,127,127,.06);transition:transform .08s,background .15s,color .15s,border-color .15s}" +
    "button:hover{background:rgba(127,127,127,.14)}button:active{transform:scale(.94)}" +
    "button:focus-visible{outline:2px solid #2563eb;outline-offset:2px}" +
    "button[aria-disabled=true]{cursor:progress;opacity:.75}" +
    "svg{width:1.15em;height:1.15em;fill:none;stroke:currentColor;stroke-width:2;stroke-linejoin:round}" +
    ".like[aria-pressed=true]{color:var(--cv-accent);border-color:var(--cv-accent)}.like[aria-pressed=true] svg{fill:currentColor}" +
    ".ud{padding:.35em .45em}.ud.down svg{transform:rotate(180deg)}" +
    ".ud.up[aria-pressed=true]{color:var(--cv-up);border-color:var(--cv-up)}.ud.down[aria-pressed=true]{color:var(--cv-down);border-color:var(--cv-down)}" +
    ".ud[aria-pressed=true] svg{fill:currentColor}" +
    ".score{min-width:1.6em;text-align:center;font-weight:600;font-variant-numeric:tabular-nums}" +
    ".stars{display:inline-flex}.stars button{border:0;background:none;padding:.1em;border-radius:4px;color:#a3a3a3}" +
    ".stars button.on{color:var(--cv-star)}.stars button.on svg{fill:currentColor}.stars button.mine{color:var(--cv-star)}" +
    ".stars button.mine svg{stroke:#b45309}" +
    ".n{font-variant-numeric:tabular-nums;opacity:.8}" +
    ".rx[aria-pressed=true]{color:var(--cv-accent);border-color:var(--cv-accent);background:rgba(225,29,72,.08)}" +
    ".err{flex-basis:100%;color:#b91c1c;font-size:.85em}.err:empty{display:none}" +
    ".off .n:after{content:' \\2022';color:#a3a3a3}";

  function ClickVote() { return Reflect.construct(HTMLElement, [], ClickVote); }
  ClickVote.prototype = Object.create(HTMLElement.prototype);
  ClickVote.prototype.constructor = ClickVote;
  Object.setPrototypeOf(ClickVote, HTMLElement);
  ClickVote.observedAttributes = ["key", "group", "item", "style", "variant", "user-id", "signature"];

  var P = ClickVote.prototype;
  P.connectedCallback = function () {
    if (!this.shadowRoot) {
      var root = this.attachShadow({ mode: "open" });
      root.innerHTML = "<style>" + CSS + '</style><div class="w" part="widget"></div>';
      this.box = root.lastChild;
      this.box.addEventListener("click", this.onClick.bind(this));
      this.box.addEventListener("keydown", this.onKey.bind(this));
    }
    this.setup();
  };
  P.disconnectedCallback = function () { this.teardown(); };
  P.attributeChangedCallback = function (name, old, val) {
    if (old !== val && this.box) {
      if (name === "style" || name === "variant") this.render(); else this.setup();
    }
  };
  P.variant = function () {
    var v = (this.getAttribute("variant") || this.getAttribute("style") || "").toLowerCase().trim();
    if (v === "updown" || v === "upvote" || v === "stars" || v === "like" || v === "reactions") return v === "upvote" ? "updown" : v;
    return this.state && this.state.defs ? "reactions" : this.state && this.state.range ? "stars" : "like";
  };
  P.teardown = function () {
    if (this.c) {
      this.c.off(this.evt, this.onVotes); this.c.off("cv-error", this.onErr);
      this.c.off("cv-online", this.onOnline); this.c.off("cv-offline", this.onOffline);
      this.c = null;
    }
  };
  P.setup = function () {
    var key = this.getAttribute("key"), group = this.getAttribute("group"),
      item = this.getAttribute("item") || this.getAttribute("vote-to") || location.pathname,
      uid = this.getAttribute("user-id"), sig = this.getAttribute("signature");
    this.teardown();
    this.group = group; this.item = item;
    this.state = this.state || { count: 0, avg: 0, mean: null, voted: false, value: 0, start: 1, end: 5, range: false, loaded: false };
    if (!key || !group) { this.render(); this.error("ClickVote: missing key or group attribute", true); return; }
    var c = this.c = conn(key, uid, uid ? sig : null), self2 = this;
    this.evt = "get-votes-" + group + "-" + item;
    this.onVotes = this.onVotes || this.applyVotes.bind(this);
    this.onErr = this.onErr || function (e) {
      e = e || {};
      if (e.id !== undefined && (String(e.id) !== self2.group || (e.voteTo !== undefined && String(e.voteTo) !== self2.item))) return;
      if (e.event === "vote" && (!self2.pending || (e.msgId !== undefined && e.msgId !== self2.pending.msgId))) return;
      self2.fail(e, e.event !== "vote");
    };
    this.onOnline = this.onOnline || function () { self2.box.classList.remove("off"); self2.load(); };
    this.onOffline = this.onOffline || function () { self2.box.classList.add("off"); };
    c.on(this.evt, this.onVotes); c.on("cv-error", this.onErr);
    c.on("cv-online", this.onOnline); c.on("cv-offline", this.onOffline);
    if (c.ready) this.load();
    if (!this.state.loaded) this.firstFrame(key);
    this.render();
  };
  // the counts a cache may hold (GET /public/v1/counts): drawn until the socket answers
  P.firstFrame = function (key) {
    var self = this, evt = this.evt, e = encodeURIComponent;
    if (!window.fetch) return;
    fetch(ORIGIN + "/public/v1/counts?key=" + e(key) + "&group=" + e(this.group) + "&item=" + e(this.item), { credentials: "omit" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        if (d && d.total && self.evt === evt && !self.state.loaded && !self.pending) {
          self.applyVotes({ total: d.total, startEnd: d.startEnd, type: d.type, reactions: d.reactions, poster: {} }, true);
        }
      })
      .catch(function () { /* the socket's answer will do */ });
  };
  P.load = function () {
    this.loadTries = 0;
    this.getVotes();
    if (this.pending) this.sendVote(); // a vote interrupted by a reconnect: same msgId, never counted twice
  };
  // the voter's state comes as the get-votes-<group>-<item> event; the answer says only whether
  // the database could not be read just now (then asked again) or the request failed
  P.getVotes = function () {
    var self = this, c = this.c, evt = this.evt;
    clearTimeout(this.loadTimer);
    c.send("get-votes", { id: this.group, voteTo: this.item, type: this.variant() === "stars" ? "range" : "single" }, function (res) {
      var err = res && res.ok === false && res.error;
      if (!err || err.code !== "storage_unavailable" || self.c !== c || self.evt !== evt) return;
      if (storageRetry(err, ++self.loadTries)) self.loadTimer = setTimeout(function () { if (self.c === c && self.evt === evt) self.getVotes(); }, retryMs(err));
      else self.onErr(err);
    });
  };
  // server -> {voted, voteValue, total:{count, avg, mean?}, startEnd} (the voter's own state) or
  // a broadcast {total, poster: {value}} (another voter's vote: totals only)
  P.applyVotes = function (d, early) {
    if (!d) return;
    var s = this.state, t = d.total || {};
    if (t.count !== undefined) s.count = +t.count;
    if (t.avg !== undefined) s.avg = +t.avg;
    if (t.mean !== undefined) s.mean = t.mean === null ? null : +t.mean;
    if (d.startEnd && d.startEnd.end) { s.start = +d.startEnd.start || 1; s.end = +d.startEnd.end; s.range = d.startEnd.end > 1; }
    if (d.type) s.range = d.type === "range";
    if (t.reactions) s.counts = t.reactions;   // a reactions group: {id: voters}
    if (d.reactions) s.defs = d.reactions;     // and its [{id, label}], in the owner's order
    if (d.voted !== undefined && !d.poster) {
      s.voted = !!d.voted; s.value = +d.voteValue || 0;
      s.mine = Array.isArray(d.voteValue) ? d.voteValue : [];
    }
    if (early) { this.render(); return; } // totals only: still waiting for the voter's own state
    if (!s.loaded && this.errMsg) this.error("");
    s.loaded = true;
    if (!this.pending) this.saved = null;
    this.render();
  };
  P.onClick = function (ev) {
    var b = ev.target.closest && ev.target.closest("button");
    if (!b || this.pending || ev.detail > 1) return; // the 2nd click of a double-click is no 2nd vote
    if (b.hasAttribute("data-r")) { this.react(b.getAttribute("data-r")); return; }
    var v = +b.getAttribute("data-v"), s = this.state;
    this.vote(s.voted && s.value === v ? 0 : v);
  };
  P.onKey = function (ev) {
    var b = ev.target.closest && ev.target.closest(".stars button");
    if (!b) return;
    var d = ev.key === "ArrowRight" || ev.key === "ArrowUp" ? 1 : ev.key === "ArrowLeft" || ev.key === "ArrowDown" ? -1 : 0;
    var n = d && (d > 0 ? b.nextElementSibling : b.previousElementSibling);
    if (n) { ev.preventDefault(); n.focus(); }
  };
  P.vote = function (value) {
    if (!this.c || this.pending) return;
    var s = this.state, range = this.variant() === "stars";
    this.saved = { count: s.count, avg: s.avg, mean: s.mean, voted: s.voted, value: s.value };
    // optimistic update, replaced by the server's totals
    if (range) {
      if (!s.voted && value) s.count += 1; else if (s.voted && !value) s.count -= 1;
    } else s.count += value - (s.voted ? s.value : 0);
    s.voted = value !== 0; s.value = value;
    this.pending = { type: range ? "range" : "single", value: value, msgId: rid() };
    this.error("");
    this.render();
    this.sendVote();
  };
  // a reactions group: the value is a reaction id, which the server toggles for this voter
  P.react = function (id) {
    if (!this.c || this.pending) return;
    var s = this.state, mine = (s.mine || []).slice(), counts = {}, k, held = mine.indexOf(id) >= 0;
    for (k in s.counts || {}) counts[k] = s.counts[k];
    this.saved = { count: s.count, avg: s.avg, mean: s.mean, voted: s.voted, value: s.value, mine: s.mine, counts: s.counts };
    counts[id] = (counts[id] || 0) + (held ? -1 : 1); // optimistic, replaced by the server's totals
    if (held) mine.splice(mine.indexOf(id), 1); else mine.push(id);
    s.counts = counts; s.mine = mine; s.voted = mine.length > 0;
    this.pending = { type: "reactions", value: id, msgId: rid() };
    this.error("");
    this.render();
    this.sendVote();
  };
  P.sendVote = function () {
    var self = this, p = this.pending;
    clearTimeout(this.voteTimer);
    if (this.c.waiting.length) { this.c.waiting.push(function () { if (self.pending === p) self.sendVote(); }); return; }
    this.voteTimer = setTimeout(function () { if (self.pending === p) self.fail({ message: "No answer from ClickVote, try again" }); }, 10000);
    this.c.send("vote", { id: this.group, voteTo: this.item, type: p.type, value: p.value, msgId: p.msgId }, function (res) {
      if (self.pending !== p || res === null) return; // disconnected: resent on reconnect
      clearTimeout(self.voteTimer);
      if (res && res.error && res.error.code === "proof_of_work_required" && !p.worked) {
        p.worked = true; // solve a new challenge, then the same vote (same msgId) once more
        self.c.prove(function () { if (self.pending === p) self.sendVote(); });
        return;
      }
      if (res && storageRetry(res.error, p.tries = (p.tries || 0) + 1)) {
        // the database is not answering just now: the same vote (same msgId) once more, later
        self.voteTimer = setTimeout(function () { if (self.pending === p) self.sendVote(); }, retryMs(res.error));
        return;
      }
      self.pending = null;
      if (res && (res.error || res.ok === false || res.statusCode >= 400)) { self.fail(res.error && res.error.message ? res.error : res); return; }
      self.saved = null; self.c.work = null; // the server trusts this connection and voter now
      // the server sends a page its own vote in the ack only: every widget of this item on
      // this connection gets it (the same as the event other pages of this voter get)
      if (res && typeof res === "object") self.c.fire(self.evt, res.poster || res.voted !== undefined ? res : { total: res.total });
      self.render();
    });
  };
  P.fail = function (e, sticky) {
    clearTimeout(this.voteTimer);
    if (this.saved) {
      var s = this.state, o = this.saved; s.count = o.count; s.avg = o.avg; s.mean = o.mean; s.voted = o.voted; s.value = o.value;
      if (o.counts) { s.counts = o.counts; s.mine = o.mine; }
    }
    this.saved = null; this.pending = null;
    var msg = (e && (e.message || e.error)) || "Vote failed";
    if (e && (e.code === "rate_limited" || e.statusCode === 429)) msg = "Too many votes, slow down a little";
    this.render();
    this.error(msg, sticky);
  };
  P.error = function (msg, sticky) {
    var el = this.shadowRoot && this.shadowRoot.querySelector(".err"), self = this;
    this.errMsg = msg;
    if (el) el.textContent = msg;
    clearTimeout(this.errTimer);
    if (msg && !sticky) this.errTimer = setTimeout(function () { self.error(""); }, 6000);
  };
  P.render = function () {
    if (!this.box) return;
    var s = this.state || {}, v = this.variant(), busy = this.pending || !this.c ? ' aria-disabled="true"' : "", h = "";
    var what = this.item ? " " + this.item : "";
    if (v === "reactions") {
      var defs = s.defs || [], counts = s.counts || {}, mine = s.mine || [];
      h = '<span class="w" role="group" aria-label="Reactions' + esc(what) + '">';
      for (var r = 0; r < defs.length; r++) {
        var id = String(defs[r].id), n = +counts[id] || 0, on = mine.indexOf(id) >= 0;
        h += '<button class="rx" data-r="' + esc(id) + '" aria-pressed="' + on + '" aria-label="' + esc(defs[r].label || id) +
          ", " + n + '"' + busy + ">" + esc(id) + '<span class="n">' + n + "</span></button>";
      }
      h += "</span>";
    } else if (v === "like") {
      h = '<button class="like" data-v="1" aria-pressed="' + (s.voted && s.value > 0) + '" aria-label="' +
        (s.voted ? "Unlike" : "Like") + what + ", " + s.count + ' likes"' + busy + ">" + ICON.heart +
        '<span class="n">' + s.count + "</span></button>";
    } else if (v === "updown") {
      h = '<button class="ud up" data-v="1" aria-pressed="' + (s.value > 0) + '" aria-label="Upvote' + what + '"' + busy + ">" + ICON.up + "</button>" +
        '<span class="score n" aria-live="polite" aria-label="Score ' + s.count + '">' + s.count + "</span>" +
        '<button class="ud down" data-v="-1" aria-pressed="' + (s.value < 0) + '" aria-label="Downvote' + what + '"' + busy + ">" + ICON.up + "</button>";
    } else {
      var start = Math.max(1, s.start || 1), end = Math.min(20, s.end || 5), avg = s.mean !== null && s.mean !== undefined ? s.mean : s.avg;
      var shown = s.voted ? s.value : Math.round(avg || 0);
      h = '<span class="stars" role="group" aria-label="Rate' + what + '">';
      for (var i = start; i <= end; i++) {
        h += '<button data-v="' + i + '" class="' + (i <= shown ? "on" : "") + (s.voted && i === s.value ? " mine" : "") +
          '" aria-pressed="' + (s.voted && i === s.value) + '" aria-label="' + i + " of " + end + ' stars"' + busy + ">" + ICON.star + "</button>";
      }
      h += '</span><span class="n" aria-live="polite">' + (s.count ? (Math.round((avg || 0) * 10) / 10) + " · " + s.count + (s.count === 1 ? " vote" : " votes") : "No votes yet") + "</span>";
    }
    var focused = this.shadowRoot.activeElement, fv = focused && focused.getAttribute("data-v");
    this.box.innerHTML = h + '<span class="err" role="alert"></span>';
    this.box.setAttribute("aria-busy", String(!!this.pending || !s.loaded));
    if (this.errMsg) this.box.querySelector(".err").textContent = this.errMsg;
    var fr = focused && focused.getAttribute("data-r");
    if (fv !== null && fv !== undefined) { var nb = this.box.querySelector('button[data-v="' + fv + '"]'); if (nb) nb.focus(); }
    if (fr !== null && fr !== undefined) {
      var rb = this.box.querySelectorAll("button[data-r]");
      for (var j = 0; j < rb.length; j++) if (rb[j].getAttribute("data-r") === fr) rb[j].focus();
    }
  };

  customElements.define("click-vote", ClickVote);
})();
