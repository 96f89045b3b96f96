/* ClickVote dashboard: a small single-page app in plain JavaScript (no build step). */
(function () {
  "use strict";

  // ------------------------------------------------------------------ helpers
  var root = document.getElementById("root");
  var state = { me: null, route: null, groupsPage: 1 };

  function esc(s) {
    return String(s === undefined || s === null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function $(sel, el) { return (el || document).querySelector(sel); }
  function $$(sel, el) { return Array.prototype.slice.call((el || document).querySelectorAll(sel)); }
  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name.replace(/[.$?*|{}()[\]\\/+^]/g, "\\$&") + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : null;
  }
  function setCookie(name, value) {
    document.cookie = name + "=" + encodeURIComponent(value || "") + "; path=/; SameSite=Lax" +
      (value ? "; max-age=31536000" : "; max-age=0") + (location.protocol === "https:" ? "; Secure" : "");
  }
  function fmt(n) { return (+n || 0).toLocaleString("en-US"); }
  function plural(n, one, many) { return fmt(n) + " " + (+n === 1 ? one : many || one + "s"); }
  var ICONS = {
    chart: '<path d="M3 3v18h18"/><path d="M7 15l4-4 3 3 6-6"/>',
    list: '<path d="M8 6h13M8 12h13M8 18h13M3 6h.01M3 12h.01M3 18h.01"/>',
    gear: '<circle cx="12" cy="12" r="3"/><path d="M19.4 15a1.7 1.7 0 0 0 .3 1.8l.1.1a2 2 0 1 1-2.8 2.8l-.1-.1a1.7 1.7 0 0 0-1.8-.3 1.7 1.7 0 0 0-1 1.5V21a2 2 0 1 1-4 0v-.1a1.7 1.7 0 0 0-1.1-1.5 1.7 1.7 0 0 0-1.8.3l-.1.1a2 2 0 1 1-2.8-2.8l.1-.1a1.7 1.7 0 0 0 .3-1.8 1.7 1.7 0 0 0-1.5-1H3a2 2 0 1 1 0-4h.1a1.7 1.7 0 0 0 1.5-1.1 1.7 1.7 0 0 0-.3-1.8l-.1-.1a2 2 0 1 1 2.8-2.8l.1.1a1.7 1.7 0 0 0 1.8.3H9a1.7 1.7 0 0 0 1-1.5V3a2 2 0 1 1 4 0v.1a1.7 1.7 0 0 0 1 1.5 1.7 1.7 0 0 0 1.8-.3l.1-.1a2 2 0 1 1 2.8 2.8l-.1.1a1.7 1.7 0 0 0-.3 1.8V9a1.7 1.7 0 0 0 1.5 1H21a2 2 0 1 1 0 4h-.1a1.7 1.7 0 0 0-1.5 1z"/>',
    logout: '<path d="M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4M16 17l5-5-5-5M21 12H9"/>',
    plus: '<path d="M12 5v14M5 12h14"/>',
    copy: '<rect x="9" y="9" width="13" height="13" rx="2"/><path d="M5 15H4a2 2 0 0 1-2-2V4a2 2 0 0 1 2-2h9a2 2 0 0 1 2 2v1"/>',
    refresh: '<path d="M23 4v6h-6M1 20v-6h6"/><path d="M3.5 9a9 9 0 0 1 14.9-3.4L23 10M1 14l4.6 4.4A9 9 0 0 0 20.5 15"/>',
    menu: '<path d="M3 6h18M3 12h18M3 18h18"/>',
    vote: '<path d="M12 21s-7.5-4.6-9.6-9.2C.9 8.4 3 4.5 6.7 4.5c2.1 0 3.6 1.2 4.3 2.4l1 1.4 1-1.4c.7-1.2 2.2-2.4 4.3-2.4 3.7 0 5.8 3.9 4.3 7.3C19.5 16.4 12 21 12 21z"/>',
    eye: '<path d="M1 12s4-8 11-8 11 8 11 8-4 8-11 8-11-8-11-8z"/><circle cx="12" cy="12" r="3"/>'
  };
  function icon(name) { return '<svg viewBox="0 0 24 24" aria-hidden="true">' + ICONS[name] + "</svg>"; }
  var LOGO = '<span class="logo"><svg viewBox="0 0 24 24" aria-hidden="true">' + ICONS.vote + "</svg></span>";

  function toast(msg, kind) {
    var box = document.getElementById("toasts"), el = document.createElement("div");
    el.className = "toast" + (kind ? " " + kind : "");
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.textContent = msg;
    box.appendChild(el);
    while (box.children.length > 3) box.firstChild.remove();
    setTimeout(function () { el.remove(); }, kind === "error" ? 7000 : 3000);
  }
  function copy(text, what) {
    function done() { toast((what || "Text") + " copied to the clipboard"); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, fallback);
    } else fallback();
    function fallback() {
      var ta = document.createElement("textarea");
      ta.value = text; ta.setAttribute("readonly", ""); ta.style.position = "fixed"; ta.style.opacity = "0";
      document.body.appendChild(ta); ta.select();
      try { document.execCommand("copy"); done(); } catch (e) { toast("Copy failed: select the text and copy it", "error"); }
      ta.remove();
    }
  }

  // ------------------------------------------------------------------ API
  function ApiError(status, body) {
    var msg = body && (body.message || body.detail || body.error);
    if (Array.isArray(msg)) msg = msg.map(function (m) { return m.msg || m.message || String(m); }).join("; ");
    if (typeof msg !== "string") msg = status ? "Request failed (HTTP " + status + ")" : "Network error: is the server running?";
    this.message = msg; this.status = status; this.body = body || {};
  }
  ApiError.prototype = Object.create(Error.prototype);

  // Field errors of a 422 answer, as {field: message}; understands several shapes.
  function fieldErrors(err) {
    var b = (err && err.body) || {}, out = {};
    var list = b.errors || b.detail || b.fields || (Array.isArray(b.message) ? b.message : null);
    if (list && !Array.isArray(list) && typeof list === "object") {
      Object.keys(list).forEach(function (k) { out[k] = Array.isArray(list[k]) ? list[k][0] : String(list[k]); });
    } else if (Array.isArray(list)) {
      list.forEach(function (e) {
        if (!e || typeof e !== "object") return;
        var f = e.field || (Array.isArray(e.loc) ? e.loc[e.loc.length - 1] : e.loc) || e.property;
        var m = e.message || e.msg || (e.constraints && Object.keys(e.constraints).map(function (k) { return e.constraints[k]; }).join(", "));
        if (f && !out[f]) out[f] = String(m || "Invalid value").replace(/^Value error, /, "");
      });
    }
    if (b.field && !out[b.field]) out[b.field] = b.message;
    return out;
  }

  function api(method, path, body) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (method !== "GET" && method !== "HEAD" && !/^\/auth\/(login|register)$/.test(path)) {
      headers["X-CSRF-Token"] = cookie("csrftoken") || "";
    }
    return fetch(path, {
      method: method, headers: headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (t) {
        var data = null;
        try { data = t ? JSON.parse(t) : null; } catch (e) { data = { message: t.slice(0, 200) }; }
        if (!r.ok) {
          var err = new ApiError(r.status, data);
          if (r.status === 401 && !/^\/auth\//.test(path)) {
            state.me = null;
            if (!/^\/(login|register)$/.test(location.pathname)) go("/login?next=" + encodeURIComponent(location.pathname + location.search));
          }
          throw err;
        }
        return data;
      });
    }, function () { throw new ApiError(0, null); });
  }

  // ------------------------------------------------------------------ routing
  var routes = [
    [/^\/$/, function () { go(state.me ? "/analytics" : "/login", true); }],
    [/^\/login$/, pageLogin, true],
    [/^\/register$/, pageRegister, true],
    [/^\/analytics$/, pageAnalytics],
    [/^\/groups$/, pageGroups],
    [/^\/groups\/([^/]+)$/, pageGroup],
    [/^\/settings$/, pageSettings]
  ];
  function go(path, replace) {
    history[replace ? "replaceState" : "pushState"](null, "", path);
    render();
  }
  document.addEventListener("click", function (ev) {
    var a = ev.target.closest && ev.target.closest("a[href]:not([href^='#'])");
    if (!a || a.target || a.hasAttribute("download") || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button) return;
    var url = new URL(a.href, location.href);
    if (url.origin !== location.origin || /^\/(static|api|socket\.io|embed\.js)/.test(url.pathname)) return;
    ev.preventDefault();
    var shell = $(".shell"); if (shell) shell.classList.remove("nav-open");
    go(url.pathname + url.search);
  });
  window.addEventListener("popstate", render);

  function loadMe() {
    return api("GET", "/users/self").then(function (me) { state.me = me; return me; }, function (e) {
      state.me = null;
      if (e.status === 401 || e.status === 403) return null;
      throw e;
    });
  }

  var renderSeq = 0;
  function render() {
    var path = location.pathname.replace(/\/+$/, "") || "/", seq = ++renderSeq;
    var match = null, m;
    for (var i = 0; i < routes.length; i++) { if ((m = routes[i][0].exec(path))) { match = routes[i]; break; } }
    var pre = state.me || (match && match[2]) ? Promise.resolve(state.me) : loadMe();
    pre.then(function (me) {
      if (seq !== renderSeq) return;
      if (!match) { shell('<div class="panel empty"><h2>Page not found</h2><p><a href="/analytics">Back to the dashboard</a></p></div>'); return; }
      if (!match[2] && !me && path !== "/") { go("/login?next=" + encodeURIComponent(path + location.search), true); return; }
      state.route = path;
      return match[1].apply(null, m.slice(1).map(decodeURIComponent));
    }).catch(function (e) { showFatal(e); });
  }
  function showFatal(e) {
    var msg = (e && e.message) || String(e);
    var html = '<div class="panel"><div class="alert error" role="alert"><strong>Something went wrong.</strong> ' + esc(msg) +
      '</div><button class="btn" id="retry">' + icon("refresh") + " Try again</button></div>";
    if ($(".shell")) $(".content").innerHTML = html; else root.innerHTML = '<div class="auth"><div class="card">' + html + "</div></div>";
    $("#retry").onclick = function () { state.me = null; render(); };
  }
  window.addEventListener("error", function (ev) { if (ev.message) toast("Error: " + ev.message, "error"); });
  window.addEventListener("unhandledrejection", function (ev) {
    var r = ev.reason; if (r && r.status === 401) return;
    toast((r && r.message) || "Unexpected error", "error");
  });

  // ------------------------------------------------------------------ app shell
  function shell(content) {
    var me = state.me || {}, env = me.currentEnv || {}, org = me.currentOrg || {};
    var navItem = function (href, ic, label) {
      var active = location.pathname === href || (href === "/groups" && location.pathname.indexOf("/groups/") === 0);
      return '<a href="' + href + '"' + (active ? ' class="active" aria-current="page"' : "") + ">" + icon(ic) + label + "</a>";
    };
    var orgOpts = (me.org || []).map(function (o) { return '<option value="' + esc(o.id) + '"' + (o.id === org.id ? " selected" : "") + ">" + esc(o.name) + "</option>"; }).join("") +
      '<option value="__new__">+ New organisation…</option>';
    var envOpts = (me.env || []).map(function (o) { return '<option value="' + esc(o.id) + '"' + (o.id === env.id ? " selected" : "") + ">" + esc(o.name) + "</option>"; }).join("");
    root.innerHTML =
      '<div class="shell"><aside class="side" aria-label="Main">' +
      '<a class="brand" href="/analytics">' + LOGO + "ClickVote</a>" +
      '<nav class="nav">' + navItem("/analytics", "chart", "Analytics") + navItem("/groups", "list", "Vote groups") + navItem("/settings", "gear", "Settings") + "</nav>" +
      '<div class="spacer"></div><div class="who" title="Signed in as">' + esc(me.email || "") + "</div>" +
      '<div class="nav"><button type="button" id="logout" class="navbtn">' + icon("logout") + "Log out</button></div></aside>" +
      '<div class="main"><header class="top">' +
      '<button class="btn ghost sm burger" id="burger" aria-label="Menu">' + icon("menu") + "</button>" +
      '<label class="switch"><span class="lbl">Organisation</span> <select id="org-switch" aria-label="Organisation">' + orgOpts + "</select></label>" +
      '<label class="switch"><span class="lbl">Environment</span> <select id="env-switch" aria-label="Environment">' + envOpts + "</select></label>" +
      '<span class="env-pill env-' + esc(env.name === "production" ? "production" : "dev") + '">' + esc(env.name || "") + "</span>" +
      '<span class="grow"></span></header><main class="content" id="content">' + content + "</main></div></div>";
    $("#logout").onclick = function () {
      api("POST", "/auth/logout", {}).catch(function () { /* gone anyway */ }).then(function () {
        state.me = null; go("/login");
      });
    };
    $("#burger").onclick = function () { $(".shell").classList.toggle("nav-open"); };
    $("#org-switch").onchange = function () {
      var sel = this;
      if (sel.value !== "__new__") { setCookie("org", sel.value); setCookie("env", ""); reloadMe(); return; }
      var name = (prompt("Name of the new organisation") || "").trim();
      if (!name) { sel.value = org.id; return; }
      api("POST", "/org/create", { name: name }).then(function (o) {
        setCookie("org", o.id); setCookie("env", ""); reloadMe();
      }, function (e) { sel.value = org.id; toast(e.message, "error"); });
    };
    $("#env-switch").onchange = function () { setCookie("env", this.value); reloadMe(); };
    return $("#content");
  }
  function reloadMe() {
    state.me = null; state.groupsPage = 1;
    loadMe().then(function () { render(); toast("Switched to " + (state.me.currentOrg || {}).name + " / " + (state.me.currentEnv || {}).name); }, showFatal);
  }
  function loading(el) { el.innerHTML = '<div class="boot" style="min-height:200px"><div class="spinner"></div></div>'; }
  function errorBox(e) { return '<div class="alert error" role="alert">' + esc(e.message || e) + "</div>"; }

  // ------------------------------------------------------------------ auth pages
  function authPage(kind) {
    var isLogin = kind === "login";
    root.innerHTML =
      '<div class="auth"><form class="card" id="auth-form" novalidate>' +
      '<div class="brand">' + LOGO + "ClickVote</div>" +
      "<h1>" + (isLogin ? "Welcome back" : "Create your account") + "</h1>" +
      '<p class="sub">' + (isLogin ? "Log in to your dashboard" : "Likes, upvotes and star ratings, live on any page") + "</p>" +
      '<div id="form-error"></div>' +
      '<label class="field" data-field="email"><span>Email</span><input type="email" name="email" autocomplete="email" required autofocus></label>' +
      '<label class="field" data-field="password"><span>Password</span><input type="password" name="password" autocomplete="' + (isLogin ? "current-password" : "new-password") + '" required minlength="8">' +
      (isLogin ? "" : '<small class="hint">At least 8 characters.</small>') + "</label>" +
      '<button class="btn" type="submit">' + (isLogin ? "Log in" : "Create account") + "</button>" +
      '<p class="alt">' + (isLogin ? 'New here? <a href="/register">Create an account</a>' : 'Already have an account? <a href="/login">Log in</a>') + "</p>" +
      "</form></div>";
    var form = $("#auth-form");
    form.onsubmit = function (ev) {
      ev.preventDefault();
      var body = { email: form.email.value.trim(), password: form.password.value };
      var local = {};
      if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(body.email)) local.email = "Enter a valid email address";
      if (!body.password) local.password = "Enter your password";
      else if (!isLogin && body.password.length < 8) local.password = "Use at least 8 characters";
      if (showFieldErrors(form, local, $("#form-error"))) return;
      var btn = $("button[type=submit]", form); btn.disabled = true;
      api("POST", "/auth/" + kind, body).then(function () {
        state.me = null;
        return loadMe();
      }).then(function () {
        var next = new URLSearchParams(location.search).get("next");
        go(next && next.charAt(0) === "/" && next.charAt(1) !== "/" ? next : (isLogin ? "/analytics" : "/groups"));
      }).catch(function (e) {
        btn.disabled = false;
        formError(form, e, $("#form-error"));
      });
    };
  }
  function pageLogin() { if (state.me) return go("/analytics", true); authPage("login"); }
  function pageRegister() { if (state.me) return go("/analytics", true); authPage("register"); }

  function showFieldErrors(form, errs, box) {
    $$(".field", form).forEach(function (f) {
      f.classList.remove("invalid");
      var e = $(".err", f); if (e) e.remove();
      var inp = $("input,select", f); if (inp) inp.removeAttribute("aria-invalid");
    });
    if (box) box.innerHTML = "";
    var keys = Object.keys(errs), unplaced = [];
    keys.forEach(function (k) {
      var f = $('.field[data-field="' + k + '"]', form);
      if (!f) { unplaced.push(errs[k]); return; }
      f.classList.add("invalid");
      var inp = $("input,select", f), id = "err-" + k;
      var s = document.createElement("small"); s.className = "err"; s.id = id; s.textContent = errs[k];
      f.appendChild(s);
      if (inp) { inp.setAttribute("aria-invalid", "true"); inp.setAttribute("aria-describedby", id); }
    });
    if (unplaced.length && box) box.innerHTML = errorBox(unplaced.join("; "));
    var first = $(".field.invalid input, .field.invalid select", form); if (first) first.focus();
    return keys.length > 0;
  }
  function formError(form, e, box) {
    var fe = fieldErrors(e);
    if (!Object.keys(fe).length && e.status === 409 && /email/i.test(e.message)) fe.email = e.message;
    if (!Object.keys(fe).length && e.status === 409 && /name/i.test(e.message)) fe.name = e.message;
    if (Object.keys(fe).length) { showFieldErrors(form, fe, box); if (box && !box.innerHTML && !$(".field.invalid", form)) box.innerHTML = errorBox(e); }
    else { showFieldErrors(form, {}, box); box.innerHTML = errorBox(e); }
  }

  // ------------------------------------------------------------------ vote groups
  function groupsFrom(res) {
    // accepts [..] or {items|data|groups|votes: [..], total, page, pages, limit}
    var list = Array.isArray(res) ? res : (res && (res.items || res.data || res.groups || res.votes || res.results)) || [];
    var total = res && !Array.isArray(res) ? (res.total !== undefined ? res.total : res.count) : list.length;
    var limit = res && (res.limit || res.pageSize || res.per_page) || list.length || 10;
    var pages = res && (res.pages || res.totalPages) || Math.max(1, Math.ceil((total || 0) / limit));
    return { list: list, total: +total || list.length, pages: +pages || 1, page: res && +res.page || state.groupsPage };
  }
  function gid(g) { return g.id || g._id; }
  function typeBadge(g) {
    if (g.type === "range") return '<span class="badge range">★ Range ' + esc(g.start) + "–" + esc(g.end) + "</span>";
    return '<span class="badge">Single</span>';
  }
  function num(g, keys) { for (var i = 0; i < keys.length; i++) { var v = g[keys[i]]; if (v !== undefined && v !== null) return v; } return 0; }
  function clicks(g) { return num(g, ["clicks", "votes", "voteCount", "count", "events"]); }
  function score(g) {
    if (g.type === "range") {
      var v = +g.voters || 0;
      return v ? (+g.score / v).toFixed(1) + " ★ <span class=\"muted\">(" + fmt(v) + ")</span>" : '<span class="muted">—</span>';
    }
    return fmt(num(g, ["score", "total", "sum"]));
  }

  function pageGroups() {
    var el = shell(
      '<div class="page-head"><div class="grow"><h1>Vote groups</h1><p>Each group is a kind of vote (like, up/down, stars) you can put on any number of items.</p></div>' +
      '<button class="btn" id="add-group">' + icon("plus") + "New group</button></div>" +
      '<div class="panel flush" id="groups-box"></div>');
    $("#add-group").onclick = function () { groupDialog(null); };
    loadGroups();
    return el;
  }
  function loadGroups() {
    var box = $("#groups-box"), page = state.groupsPage, limit = 10;
    loading(box);
    api("GET", "/votes/?page=" + page + "&limit=" + limit).then(function (res) {
      var r = groupsFrom(res);
      if (!r.list.length && page > 1) { state.groupsPage = page - 1; return loadGroups(); }
      if (!r.list.length) {
        box.innerHTML = '<div class="empty">' + icon("vote") + "<h2>No vote groups yet</h2><p>Create one, then paste its snippet into your page.</p>" +
          '<button class="btn" id="add-first">' + icon("plus") + "Create your first group</button></div>";
        $("#add-first").onclick = function () { groupDialog(null); };
        return;
      }
      box.innerHTML = '<table><thead><tr><th>Name</th><th>Type</th><th class="num">Clicks</th><th class="num">Score</th><th class="hide-sm"></th></tr></thead><tbody>' +
        r.list.map(function (g) {
          return '<tr data-id="' + esc(gid(g)) + '"><td><a href="/groups/' + encodeURIComponent(gid(g)) + '"><strong>' + esc(g.name) + "</strong></a></td><td>" + typeBadge(g) +
            '</td><td class="num">' + fmt(clicks(g)) + '</td><td class="num">' + score(g) + '</td><td class="actions hide-sm">' +
            '<a class="btn ghost sm" href="/groups/' + encodeURIComponent(gid(g)) + '">Open</a> <button class="btn ghost sm" data-edit>Edit</button> <button class="btn ghost sm danger" data-del>Delete</button></td></tr>';
        }).join("") + "</tbody></table>" +
        '<div class="pager"><span>' + plural(r.total, "group") + " · page " + r.page + " of " + r.pages + "</span><span>" +
        '<button class="btn ghost sm" id="prev"' + (r.page <= 1 ? " disabled" : "") + ">← Previous</button> " +
        '<button class="btn ghost sm" id="next"' + (r.page >= r.pages ? " disabled" : "") + ">Next →</button></span></div>";
      $("#prev").onclick = function () { state.groupsPage = Math.max(1, page - 1); loadGroups(); };
      $("#next").onclick = function () { state.groupsPage = page + 1; loadGroups(); };
      $$("tr[data-id]", box).forEach(function (tr) {
        var g = r.list.filter(function (x) { return String(gid(x)) === tr.getAttribute("data-id"); })[0];
        $("[data-edit]", tr).onclick = function () { groupDialog(g); };
        $("[data-del]", tr).onclick = function () { deleteGroup(g, loadGroups); };
      });
    }).catch(function (e) { box.innerHTML = '<div style="padding:16px">' + errorBox(e) + "</div>"; });
  }
  function deleteGroup(g, after) {
    if (!confirm('Delete the group "' + g.name + '"? Pages using it will stop showing votes.')) return;
    api("DELETE", "/votes/" + encodeURIComponent(gid(g))).then(function () { toast("Group deleted"); after(); }, function (e) { toast(e.message, "error"); });
  }

  function groupDialog(g, after) {
    var d = document.createElement("dialog"), isNew = !g;
    g = g || { name: "", type: "single", start: 1, end: 5 };
    d.innerHTML =
      '<form method="dialog" novalidate><h2>' + (isNew ? "New vote group" : "Edit " + esc(g.name)) + "</h2>" +
      '<div id="dlg-error"></div>' +
      '<label class="field" data-field="name"><span>Name</span><input name="name" value="' + esc(g.name) + '" required minlength="2" placeholder="e.g. article-likes" autocomplete="off">' +
      '<small class="hint">Used in the embed snippet; unique in this environment.</small></label>' +
      '<label class="field" data-field="type"><span>Type</span><select name="type">' +
      '<option value="single"' + (g.type !== "range" ? " selected" : "") + ">Single: like or upvote/downvote</option>" +
      '<option value="range"' + (g.type === "range" ? " selected" : "") + ">Range: star rating</option></select></label>" +
      '<div class="row" id="range-row"><label class="field" data-field="start"><span>From</span><input name="start" type="number" value="' + esc(g.start || 1) + '"></label>' +
      '<label class="field" data-field="end"><span>To</span><input name="end" type="number" value="' + esc(g.end || 5) + '"></label></div>' +
      '<div class="actions"><button class="btn ghost" value="cancel" formnovalidate type="button" id="dlg-cancel">Cancel</button>' +
      '<button class="btn" type="submit">' + (isNew ? "Create group" : "Save changes") + "</button></div></form>";
    document.body.appendChild(d);
    var form = $("form", d);
    function sync() { $("#range-row", d).style.display = form.type.value === "range" ? "" : "none"; }
    form.type.onchange = sync; sync();
    $("#dlg-cancel", d).onclick = function () { d.close(); };
    d.addEventListener("close", function () { d.remove(); });
    form.onsubmit = function (ev) {
      ev.preventDefault();
      var body = { name: form.name.value.trim(), type: form.type.value };
      if (body.type === "range") { body.start = parseInt(form.start.value, 10); body.end = parseInt(form.end.value, 10); }
      var btn = $("button[type=submit]", form); btn.disabled = true;
      (isNew ? api("POST", "/votes/", body) : api("PUT", "/votes/" + encodeURIComponent(gid(g)), body)).then(function (saved) {
        d.close();
        toast(isNew ? "Group created" : "Group saved");
        if (isNew && saved && gid(saved)) go("/groups/" + encodeURIComponent(gid(saved)));
        else if (after) after(saved); else loadGroups();
      }).catch(function (e) { btn.disabled = false; formError(form, e, $("#dlg-error", d)); });
    };
    d.showModal();
    form.name.focus();
  }

  // ------------------------------------------------------------------ group page
  var embedLoaded = false;
  function loadEmbed() {
    if (embedLoaded || customElements.get("click-vote")) return;
    embedLoaded = true;
    var s = document.createElement("script"); s.src = "/embed.js"; s.defer = true;
    document.head.appendChild(s);
  }
  function snippetText(key, group, item, style) {
    return '<script src="' + location.origin + '/embed.js" defer></script>\n' +
      '<click-vote key="' + key + '" group="' + group + '" item="' + item + '" style="' + style + '"></click-vote>';
  }
  function snippetHtml(text) {
    return esc(text).replace(/&lt;(\/?)([\w-]+)/g, '&lt;$1<span class="t">$2</span>')
      .replace(/([\w-]+)=(&quot;[^&]*&quot;)/g, '<span class="a">$1</span>=<span class="s">$2</span>');
  }
  function pageGroup(id) {
    var el = shell('<div id="group-box"></div>'), box = $("#group-box");
    loading(box);
    api("GET", "/votes/" + encodeURIComponent(id)).then(function (g) {
      g = g && (g.group || g);
      var env = (state.me && state.me.currentEnv) || {}, key = env.public_key || env.publicKey || "";
      var styles = g.type === "range" ? ["stars"] : ["like", "updown"];
      var st = { style: styles[0], item: "demo-item" };
      box.innerHTML =
        '<div class="page-head"><div class="grow"><p><a href="/groups">← Vote groups</a></p><h1>' + esc(g.name) + " " + typeBadge(g) + "</h1></div>" +
        '<a class="btn ghost" href="/analytics?group=' + encodeURIComponent(g.name) + '">' + icon("chart") + "Analytics</a>" +
        '<button class="btn ghost" id="edit">Edit</button><button class="btn ghost danger" id="del">Delete</button></div>' +
        '<div class="grid cols-2"><div class="panel"><h2>Embed it</h2>' +
        '<p class="muted">Paste this where the votes should appear. <code>item</code> names what is voted on (an article id, a URL…).</p>' +
        '<div class="row" style="margin:12px 0"><label class="field" data-field="item"><span>Item</span><input id="item" value="' + esc(st.item) + '"></label>' +
        '<label class="field"><span>Style</span><div class="seg" id="style-seg" role="group" aria-label="Style">' + styles.map(function (s) {
          return '<button type="button" data-style="' + s + '" aria-pressed="' + (s === st.style) + '">' + ({ like: "Like", updown: "Up / down", stars: "Stars" })[s] + "</button>";
        }).join("") + "</div></label></div>" +
        '<pre class="snippet" id="snippet"></pre><div style="margin-top:12px;display:flex;gap:8px"><button class="btn" id="copy-snippet">' + icon("copy") + "Copy snippet</button></div>" +
        '<p class="muted" style="margin-top:14px">Logged-in users on your site? Pass <code>user-id="…"</code> and <code>signature="…"</code> (HMAC-SHA256 of the id with your secret key) so nobody can vote as someone else. Otherwise each visitor gets an anonymous voter token.</p></div>' +
        '<div class="panel"><h2>Live preview</h2><p class="muted">This is the real embed, connected to this environment: votes here count.</p>' +
        '<div class="preview" id="preview"></div>' +
        '<h3 style="margin-top:18px">Items voted on</h3><div class="chips" id="items"><span class="muted">Loading…</span></div></div></div>';
      function update() {
        var text = snippetText(key, g.name, st.item, st.style);
        $("#snippet").innerHTML = snippetHtml(text);
        $("#snippet").setAttribute("data-text", text);
        var pv = $("#preview");
        pv.innerHTML = "";
        var cv = document.createElement("click-vote");
        cv.setAttribute("key", key); cv.setAttribute("group", g.name); cv.setAttribute("item", st.item); cv.setAttribute("variant", st.style);
        pv.appendChild(cv);
      }
      loadEmbed(); update();
      $("#copy-snippet").onclick = function () { copy($("#snippet").getAttribute("data-text"), "Snippet"); };
      var t = null;
      $("#item").oninput = function () { clearTimeout(t); var v = this.value.trim(); t = setTimeout(function () { st.item = v || "demo-item"; update(); }, 350); };
      $$("#style-seg button").forEach(function (b) {
        b.onclick = function () { st.style = b.getAttribute("data-style"); $$("#style-seg button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); }); update(); };
      });
      $("#edit").onclick = function () { groupDialog(g, function () { pageGroup(id); }); };
      $("#del").onclick = function () { deleteGroup(g, function () { go("/groups"); }); };
      var itemsSeq = 0;
      function loadItems() {
        var seq = ++itemsSeq;
        api("GET", "/votes/" + encodeURIComponent(g.name) + "/stats?limit=50").then(function (res) {
          var items = (res && res.top) || [], box2 = $("#items");
          if (!box2 || seq !== itemsSeq) return;
          if (!items.length) { box2.innerHTML = '<span class="muted">No votes yet. Try the preview!</span>'; return; }
          box2.innerHTML = items.map(function (it) {
            var total = g.type === "range" ? (it.count ? (+it.mean).toFixed(1) + "★ ×" + fmt(it.count) : "–") : fmt(it.count);
            return '<button class="chip" type="button" data-v="' + esc(it.voteTo) + '" title="Preview this item">' + esc(it.voteTo) + " · " + esc(total) + "</button>";
          }).join("");
          $$(".chip", box2).forEach(function (c) { c.onclick = function () { st.item = c.getAttribute("data-v"); $("#item").value = st.item; update(); }; });
        }, function (e) { var b = $("#items"); if (b) b.innerHTML = errorBox(e); });
      }
      loadItems();
      var itemsTimer = null;
      $("#preview").addEventListener("click", function () { clearTimeout(itemsTimer); itemsTimer = setTimeout(loadItems, 600); });
      $("#preview").addEventListener("keyup", function () { clearTimeout(itemsTimer); itemsTimer = setTimeout(loadItems, 600); });
    }).catch(function (e) {
      box.innerHTML = '<div class="page-head"><p><a href="/groups">← Vote groups</a></p></div><div class="panel">' + errorBox(e.status === 404 ? "This vote group does not exist (or was deleted)." : e) + "</div>";
    });
    return el;
  }

  // ------------------------------------------------------------------ analytics
  var RANGES = { "1d": { hours: 24, label: "Last 24 hours", bucket: 1 }, "7d": { hours: 168, label: "Last 7 days", bucket: 1 },
    "30d": { hours: 720, label: "Last 30 days", bucket: 24 }, "1y": { hours: 8760, label: "Last 12 months", bucket: 168 } };
  function bucketTime(id) {
    if (typeof id === "number") return id < 1e11 ? id * 1000 : id;
    if (id && typeof id === "object") {
      if (id.year !== undefined) return Date.UTC(id.year, (id.month || 1) - 1, id.day || 1, id.hour || 0);
      if (id.$date) return Date.parse(id.$date);
    }
    var s = String(id);
    if (/^\d+$/.test(s)) return bucketTime(+s);
    if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}$/.test(s)) s += ":00:00Z";
    else if (/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$/.test(s)) s += "Z";
    var t = Date.parse(s.replace(" ", "T"));
    return isNaN(t) ? null : t;
  }
  function pageAnalytics() {
    var q = new URLSearchParams(location.search);
    var sel = { range: RANGES[q.get("range")] ? q.get("range") : "7d", group: q.get("group") || "", voteTo: q.get("voteTo") || "" };
    var el = shell(
      '<div class="page-head"><div class="grow"><h1>Analytics</h1><p>Every vote, un-vote and change, hour by hour.</p></div>' +
      '<div class="seg" id="range-seg" role="group" aria-label="Date range">' + Object.keys(RANGES).map(function (r) {
        return '<button type="button" data-range="' + r + '" aria-pressed="' + (r === sel.range) + '">' + r + "</button>";
      }).join("") + "</div></div>" +
      '<div class="grid cols-4" id="stats" style="margin-bottom:20px"></div>' +
      '<div class="panel"><div class="chart-head"><div class="grow"><h2 style="margin:0" id="chart-title">Votes</h2><span class="muted" id="chart-sub"></span></div>' +
      '<label class="switch">Group <select id="f-group" aria-label="Group"><option value="">All groups</option></select></label>' +
      '<label class="switch">Item <select id="f-item" aria-label="Item"><option value="">All items</option></select></label></div>' +
      '<div class="chart" id="chart"></div></div>');
    var groups = [];
    function syncUrl() {
      var p = new URLSearchParams();
      if (sel.range !== "7d") p.set("range", sel.range);
      if (sel.group) p.set("group", sel.group);
      if (sel.voteTo) p.set("voteTo", sel.voteTo);
      history.replaceState(null, "", "/analytics" + (p.toString() ? "?" + p : ""));
    }
    $$("#range-seg button").forEach(function (b) {
      b.onclick = function () {
        sel.range = b.getAttribute("data-range");
        $$("#range-seg button").forEach(function (x) { x.setAttribute("aria-pressed", String(x === b)); });
        syncUrl(); load();
      };
    });
    $("#f-group").onchange = function () { sel.group = this.value; sel.voteTo = ""; syncUrl(); loadItems(); load(); };
    $("#f-item").onchange = function () { sel.voteTo = this.value; syncUrl(); load(); };
    function loadItems() {
      var s = $("#f-item");
      s.innerHTML = '<option value="">All items</option>';
      s.disabled = !sel.group;
      if (!sel.group) return;
      api("GET", "/votes/" + encodeURIComponent(sel.group) + "/to").then(function (items) {
        items = Array.isArray(items) ? items : (items && (items.items || items.data)) || [];
        s.innerHTML = '<option value="">All items</option>' + items.map(function (it) {
          var v = typeof it === "string" ? it : it.voteTo || it._id || it.id;
          return '<option value="' + esc(v) + '"' + (v === sel.voteTo ? " selected" : "") + ">" + esc(v) + "</option>";
        }).join("");
      }, function () { /* the chart shows errors */ });
    }
    function fetchSeries() {
      var qs = "?dateRange=" + sel.range + (sel.voteTo ? "&voteTo=" + encodeURIComponent(sel.voteTo) : "");
      if (sel.group) return api("GET", "/votes/" + encodeURIComponent(sel.group) + "/analytics" + qs);
      // all groups: the server's env-wide series if it has one, else the sum of each group's
      return api("GET", "/analytics/data" + qs).catch(function (e) {
        if (e.status !== 404 && e.status !== 405 && e.status !== 422) throw e;
        return Promise.all(groups.slice(0, 25).map(function (g) {
          return api("GET", "/votes/" + encodeURIComponent(g.name) + "/analytics" + qs);
        })).then(function (all) { return [].concat.apply([], all); });
      });
    }
    var loadSeq = 0;
    function load() {
      var seq = ++loadSeq, chart = $("#chart");
      chart.innerHTML = '<div class="boot" style="min-height:300px"><div class="spinner"></div></div>';
      fetchSeries().then(function (rows) {
        if (seq !== loadSeq || !$("#chart")) return;
        rows = Array.isArray(rows) ? rows : (rows && (rows.items || rows.data)) || [];
        var series = toSeries(rows, RANGES[sel.range]);
        drawChart($("#chart"), series, RANGES[sel.range]);
        drawStats(series, rows);
        $("#chart-title").textContent = (sel.group ? sel.group : "All groups") + (sel.voteTo ? " · " + sel.voteTo : "");
        $("#chart-sub").textContent = RANGES[sel.range].label + " · " + ({ 1: "hourly", 24: "daily", 168: "weekly" })[RANGES[sel.range].bucket] + " totals";
      }).catch(function (e) {
        if (seq === loadSeq && $("#chart")) $("#chart").innerHTML = errorBox(e);
      });
    }
    function drawStats(series, rows) {
      var total = 0, peak = { v: 0, t: null };
      rows.forEach(function (r) { var c = +r.count || 0; total += c; if (c > peak.v) peak = { v: c, t: bucketTime(r._id !== undefined ? r._id : r.hour) }; });
      var days = RANGES[sel.range].hours / 24;
      var stats = [
        ["Votes", fmt(total), RANGES[sel.range].label.toLowerCase()],
        ["Busiest hour", peak.t ? fmt(peak.v) : "—", peak.t ? new Date(peak.t).toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric" }) : "no votes yet"],
        ["Per day", (total / days).toFixed(total / days < 10 ? 1 : 0), "on average"],
        sel.group ? ["Items", String($("#f-item").options.length - 1), "voted on in " + sel.group] : ["Groups", fmt(groups.length), "in " + ((state.me.currentEnv || {}).name || "this environment")]
      ];
      $("#stats").innerHTML = stats.map(function (s) {
        return '<div class="stat"><div class="label">' + esc(s[0]) + '</div><div class="value">' + esc(s[1]) + '</div><div class="sub">' + esc(s[2]) + "</div></div>";
      }).join("");
    }
    api("GET", "/votes/?page=1&limit=100").then(function (res) {
      groups = groupsFrom(res).list;
      var s = $("#f-group");
      if (!s) return;
      s.innerHTML = '<option value="">All groups</option>' + groups.map(function (g) {
        return '<option value="' + esc(g.name) + '"' + (g.name === sel.group ? " selected" : "") + ">" + esc(g.name) + "</option>";
      }).join("");
      loadItems(); load();
    }).catch(function (e) { $("#chart").innerHTML = errorBox(e); });
    return el;
  }

  // rows [{_id: hour, count}] -> [{t, v}] with empty buckets filled, grouped by the range's bucket size
  function toSeries(rows, range) {
    var H = 3600000, now = Date.now(), step = range.bucket * H;
    var end = Math.floor(now / H) * H + H, start = end - range.hours * H;
    var n = Math.ceil(range.hours / range.bucket), out = [];
    for (var i = 0; i < n; i++) out.push({ t: start + i * step, v: 0 });
    rows.forEach(function (r) {
      var t = bucketTime(r._id !== undefined ? r._id : (r.hour !== undefined ? r.hour : r.t));
      if (t === null) return;
      var idx = Math.floor((t - start) / step);
      if (idx >= n && t < end + H) idx = n - 1;
      if (idx >= 0 && idx < n) out[idx].v += +r.count || 0;
    });
    return out;
  }
  function niceMax(v) {
    if (v <= 4) return 4;
    var p = Math.pow(10, Math.floor(Math.log10(v))), m = v / p;
    return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 2.5 ? 2.5 : m <= 5 ? 5 : 10) * p;
  }
  function drawChart(el, series, range) {
    var W = Math.max(320, el.clientWidth || 800), Hh = el.clientHeight || 320;
    var pad = { l: 44, r: 12, t: 14, b: 30 }, cw = W - pad.l - pad.r, ch = Hh - pad.t - pad.b;
    var max = 0; series.forEach(function (p) { max = Math.max(max, p.v); });
    var top = niceMax(max), n = series.length, bw = cw / n;
    var y = function (v) { return pad.t + ch - (v / top) * ch; };
    var svg = '<svg viewBox="0 0 ' + W + " " + Hh + '" role="img" aria-label="Votes chart: ' + esc(range.label) + ", " + fmt(series.reduce(function (a, p) { return a + p.v; }, 0)) + ' votes">' +
      '<defs><linearGradient id="cv-bar" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stop-color="var(--accent-2)"/><stop offset="1" stop-color="var(--accent)"/></linearGradient>' +
      '<linearGradient id="cv-area" x1="0" x2="0" y1="0" y2="1"><stop offset="0" stop-color="var(--accent)" stop-opacity=".35"/><stop offset="1" stop-color="var(--accent)" stop-opacity="0"/></linearGradient></defs>';
    for (var k = 0; k <= 4; k++) {
      var gv = (top / 4) * k, gy = y(gv);
      svg += '<line class="grid-line" x1="' + pad.l + '" x2="' + (W - pad.r) + '" y1="' + gy + '" y2="' + gy + '"/>' +
        '<text class="axis" x="' + (pad.l - 8) + '" y="' + (gy + 4) + '" text-anchor="end">' + (gv % 1 ? gv.toFixed(1) : fmt(gv)) + "</text>";
    }
    // x labels: about 6-8 of them
    var every = Math.max(1, Math.ceil(n / Math.max(2, Math.floor(cw / 90))));
    for (var i = 0; i < n; i += every) {
      var d = new Date(series[i].t), lab = range.bucket === 1 && range.hours <= 24 ? d.toLocaleTimeString(undefined, { hour: "numeric" })
        : range.bucket === 1 ? d.toLocaleDateString(undefined, { weekday: "short", day: "numeric" })
          : d.toLocaleDateString(undefined, { month: "short", day: "numeric" });
      svg += '<text class="axis" x="' + (pad.l + i * bw + bw / 2) + '" y="' + (Hh - 8) + '" text-anchor="middle">' + esc(lab) + "</text>";
    }
    if (n <= 60) {
      series.forEach(function (p, j) {
        if (!p.v) return;
        var h = Math.max(2, ch - (y(p.v) - pad.t)), x = pad.l + j * bw + bw * 0.15, w = Math.max(1, bw * 0.7), r = Math.min(4, w / 2);
        svg += '<path class="bar" d="M' + x + "," + (pad.t + ch) + "V" + (pad.t + ch - h + r) + "q0,-" + r + " " + r + ",-" + r + "h" + (w - 2 * r) + "q" + r + ",0 " + r + "," + r + "V" + (pad.t + ch) + 'Z"/>';
      });
    } else {
      var pts = series.map(function (p, j) { return [pad.l + j * bw + bw / 2, y(p.v)]; });
      var line = pts.map(function (p, j) { return (j ? "L" : "M") + p[0].toFixed(1) + "," + p[1].toFixed(1); }).join("");
      svg += '<path class="area" d="' + line + "L" + pts[n - 1][0].toFixed(1) + "," + (pad.t + ch) + "L" + pts[0][0].toFixed(1) + "," + (pad.t + ch) + 'Z"/>' +
        '<path class="line" d="' + line + '"/>';
    }
    if (!max) svg += '<text class="nodata" x="' + (pad.l + cw / 2) + '" y="' + (pad.t + ch / 2) + '">No votes in this period yet</text>';
    svg += '<line class="cursor" id="cursor" y1="' + pad.t + '" y2="' + (pad.t + ch) + '" x1="-10" x2="-10" opacity="0"/>';
    svg += '<rect id="hit" x="' + pad.l + '" y="' + pad.t + '" width="' + cw + '" height="' + ch + '" fill="transparent"/></svg><div class="tip" id="tip"></div>';
    el.innerHTML = svg;
    el.setAttribute("data-total", String(series.reduce(function (a, p) { return a + p.v; }, 0)));
    var tip = $("#tip", el), cur = $("#cursor", el), svgEl = $("svg", el);
    $("#hit", el).addEventListener("mousemove", function (ev) {
      var rect = svgEl.getBoundingClientRect(), sx = (ev.clientX - rect.left) * (W / rect.width);
      var j = Math.min(n - 1, Math.max(0, Math.floor((sx - pad.l) / bw))), p = series[j], cx = pad.l + j * bw + bw / 2;
      cur.setAttribute("x1", cx); cur.setAttribute("x2", cx); cur.setAttribute("opacity", "1");
      var d = new Date(p.t), when = range.bucket === 1 ? d.toLocaleString(undefined, { month: "short", day: "numeric", hour: "numeric" })
        : (range.bucket === 24 ? "" : "Week of ") + d.toLocaleDateString(undefined, { month: "short", day: "numeric", year: "numeric" });
      tip.innerHTML = "<b>" + fmt(p.v) + "</b> " + (p.v === 1 ? "vote" : "votes") + "<br>" + esc(when);
      tip.style.left = (cx * rect.width / W) + "px"; tip.style.top = (y(p.v) * rect.height / Hh) + "px";
      tip.classList.add("on");
    });
    $("#hit", el).addEventListener("mouseleave", function () { tip.classList.remove("on"); cur.setAttribute("opacity", "0"); });
    el._redraw = function () { drawChart(el, series, range); };
  }
  var rz = null;
  window.addEventListener("resize", function () {
    clearTimeout(rz);
    rz = setTimeout(function () { var c = $("#chart"); if (c && c._redraw) c._redraw(); }, 150);
  });

  // ------------------------------------------------------------------ settings
  function pageSettings() {
    var me = state.me || {}, org = me.currentOrg || {}, env = me.currentEnv || {};
    var el = shell(
      '<div class="page-head"><div class="grow"><h1>Settings</h1><p>Organisation <strong>' + esc(org.name) + "</strong> · environment <strong>" + esc(env.name) + "</strong></p></div></div>" +
      '<div class="panel"><h2>Organisation</h2><form id="org-form" novalidate><div id="org-error"></div><div class="row">' +
      '<label class="field" data-field="name"><span>Name</span><input name="name" value="' + esc(org.name) + '" required></label>' +
      '<div class="field btn-cell"><span aria-hidden="true">&nbsp;</span><button class="btn" type="submit">Save</button></div></div></form></div>' +
      '<div class="panel"><h2>API keys · ' + esc(env.name) + '</h2><p class="muted">The public key goes into your pages. The secret key stays on your server: use it to sign user ids.</p>' +
      '<div id="keys"><div class="spinner"></div></div></div>');
    var f = $("#org-form");
    f.onsubmit = function (ev) {
      ev.preventDefault();
      var name = f.name.value.trim();
      if (name.length < 2 && showFieldErrors(f, { name: "Use at least 2 characters" }, $("#org-error"))) return;
      api("PUT", "/org/update", { name: name }).then(function () {
        showFieldErrors(f, {}, $("#org-error"));
        toast("Organisation renamed");
        state.me = null; loadMe().then(function () { render(); });
      }, function (e) { formError(f, e, $("#org-error")); });
    };
    loadKeys();
    return el;
  }
  function keyRow(id, label, value, secret) {
    return '<label class="field"><span>' + label + '</span><div class="copy-row"><input id="' + id + '" readonly value="' + esc(value) + '"' + (secret ? ' type="password"' : "") + ' spellcheck="false">' +
      (secret ? '<button class="btn ghost" type="button" data-reveal="' + id + '" aria-label="Show secret key">' + icon("eye") + "</button>" : "") +
      '<button class="btn ghost" type="button" data-copy="' + id + '" aria-label="Copy ' + label + '">' + icon("copy") + "Copy</button></div></label>";
  }
  // Which voter identities the environment accepts, each with what it protects against.
  function identityBox(k) {
    if (!k.identityOptions) return "";
    var on = k.identities || [];
    return '<fieldset id="identities" style="border:0;padding:0;margin:4px 0 16px"><legend style="font-weight:600;margin-bottom:6px">Votes are accepted from</legend>' +
      k.identityOptions.map(function (o) {
        return '<label style="display:flex;gap:8px;align-items:flex-start;margin:6px 0"><input type="checkbox" id="id-' + esc(o.kind) + '" data-identity="' + esc(o.kind) + '" style="width:auto;margin-top:3px"' + (on.indexOf(o.kind) >= 0 ? " checked" : "") + "><span><b>" + esc(o.label) + '</b><br><span class="muted">' + esc(o.protects) + "</span></span></label>";
      }).join("") + "</fieldset>";
  }
  function loadKeys() {
    var box = $("#keys");
    api("GET", "/settings/").then(function (k) {
      if (!$("#keys")) return;
      box.innerHTML = keyRow("public-key", "Public key", k.publicKey || k.public_key, false) +
        keyRow("secret-key", "Secret key", k.secretKey || k.secret_key, true) +
        identityBox(k) +
        '<div style="display:flex;gap:8px;flex-wrap:wrap"><button class="btn ghost danger" id="rotate">' + icon("refresh") + "Rotate keys</button></div>" +
        '<p class="muted" style="margin-top:10px">Rotating issues a new public and secret key at once: pages still using the old public key stop working.</p>';
      $$("[data-copy]", box).forEach(function (b) {
        b.onclick = function () { var i = $("#" + b.getAttribute("data-copy")); copy(i.value, i.id === "secret-key" ? "Secret key" : "Public key"); };
      });
      $$("[data-reveal]", box).forEach(function (b) {
        b.onclick = function () { var i = $("#" + b.getAttribute("data-reveal")); i.type = i.type === "password" ? "text" : "password"; };
      });
      $$("[data-identity]", box).forEach(function (c) {
        c.onchange = function () {
          var kinds = $$("[data-identity]", box).filter(function (i) { return i.checked; }).map(function (i) { return i.getAttribute("data-identity"); });
          api("PUT", "/settings/", { identities: kinds }).then(function () { toast("Saved"); }, function (e) { c.checked = !c.checked; toast(e.message, "error"); });
        };
      });
      $("#rotate").onclick = function () {
        if (!confirm("Rotate the keys of " + ((state.me.currentEnv || {}).name || "this environment") + "? Pages using the current public key will stop working until you update them.")) return;
        api("POST", "/settings/rotate", {}).then(function () {
          toast("New keys issued");
          state.me = null; loadMe().then(loadKeys);
        }, function (e) { toast(e.message, "error"); });
      };
    }).catch(function (e) { box.innerHTML = errorBox(e); });
  }

  render();
})();
