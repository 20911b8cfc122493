// The admin alerts page: reads GET /api/v1/admin/alerts/stream (Server-Sent Events) with fetch(),
// because EventSource cannot send an Authorization header, and shows each alert as it arrives.
//
// The token comes from the URL fragment (#token=..., which never reaches a server or a log) or from the
// form, and is kept in sessionStorage: this tab only, gone when it closes. Text from alerts is only
// ever set with textContent, never parsed as HTML.
"use strict";

(() => {
  const STREAM_URL = "/api/v1/admin/alerts/stream";
  const TOKEN_KEY = "commdesk.admin.token";
  // Alerts kept on the page; older ones fall off the bottom.
  const MAX_ALERTS = 200;
  // Reconnect waits double after each failure, from the server's retry: hint up to this ceiling.
  const MAX_RETRY_MS = 30000;
  const SEVERITIES = new Set(["info", "warning", "critical"]);

  const ui = {
    connection: document.getElementById("connection"),
    signOut: document.getElementById("sign-out"),
    form: document.getElementById("token-form"),
    tokenInput: document.getElementById("token-input"),
    tokenError: document.getElementById("token-error"),
    section: document.getElementById("alerts-section"),
    empty: document.getElementById("empty"),
    list: document.getElementById("alerts"),
  };

  const state = {
    lastEventId: null,
    seen: new Set(),
    baseRetryMs: 3000,
    failures: 0,
    controller: null,
    reconnectTimer: null,
  };

  // --- token -------------------------------------------------------------------------------------

  function takeTokenFromFragment() {
    const params = new URLSearchParams(window.location.hash.slice(1));
    const token = params.get("token");
    if (token) {
      sessionStorage.setItem(TOKEN_KEY, token);
      // Drop the token from the address bar and the history entry.
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  }

  function showTokenForm(message) {
    ui.form.hidden = false;
    ui.section.hidden = true;
    ui.signOut.hidden = true;
    ui.tokenError.hidden = !message;
    ui.tokenError.textContent = message || "";
    ui.tokenInput.focus();
  }

  function showAlerts() {
    ui.form.hidden = true;
    ui.section.hidden = false;
    ui.signOut.hidden = false;
  }

  // --- connection ----------------------------------------------------------------------------------

  function setConnection(stateName, text) {
    ui.connection.dataset.state = stateName;
    ui.connection.textContent = text;
  }

  async function connect() {
    const token = sessionStorage.getItem(TOKEN_KEY);
    if (!token) {
      setConnection("disconnected", "Not connected");
      showTokenForm("");
      return;
    }
    showAlerts();
    const controller = new AbortController();
    state.controller = controller;
    setConnection("connecting", "Connecting…");
    const headers = { Authorization: `Bearer ${token}`, Accept: "text/event-stream" };
    if (state.lastEventId) {
      headers["Last-Event-ID"] = state.lastEventId;
    }
    try {
      const response = await fetch(STREAM_URL, { headers, cache: "no-store", signal: controller.signal });
      if (response.status === 401 || response.status === 403) {
        sessionStorage.removeItem(TOKEN_KEY);
        setConnection("unauthorized", "Not authorised");
        showTokenForm(await errorMessage(response));
        return;
      }
      if (!response.ok || !response.body) {
        throw new Error(`the stream answered HTTP ${response.status}`);
      }
      state.failures = 0;
      setConnection("connected", "Live");
      await readEvents(response.body);
    } catch (error) {
      if (controller.signal.aborted) {
        return;
      }
      console.warn("alert stream interrupted:", error.message);
    }
    if (!controller.signal.aborted) {
      scheduleReconnect();
    }
  }

  function scheduleReconnect() {
    state.failures += 1;
    const wait = Math.min(MAX_RETRY_MS, state.baseRetryMs * 2 ** (state.failures - 1));
    setConnection("reconnecting", `Reconnecting in ${Math.round(wait / 1000)} s…`);
    state.reconnectTimer = window.setTimeout(connect, wait);
  }

  function disconnect() {
    window.clearTimeout(state.reconnectTimer);
    if (state.controller) {
      state.controller.abort();
    }
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return (body.error && body.error.message) || `HTTP ${response.status}`;
    } catch {
      return `HTTP ${response.status}`;
    }
  }

  // --- Server-Sent Events parsing (the WHATWG event-stream format) ---------------------------------

  async function readEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let event = newEvent();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) {
        return;
      }
      buffer += value;
      // A "\r" at the very end may be half of a "\r\n" split across chunks: keep it back, or the "\n"
      // that follows would read as an empty line and end the event early.
      const held = buffer.endsWith("\r") ? "\r" : "";
      const lines = buffer.slice(0, buffer.length - held.length).split(/\r\n|\r|\n/);
      // The last piece is an unfinished line (or ""), kept for the next chunk.
      buffer = lines.pop() + held;
      for (const line of lines) {
        if (line === "") {
          dispatch(event);
          event = newEvent();
        } else {
          readField(event, line);
        }
      }
    }
  }

  function newEvent() {
    return { type: "message", data: [], id: null };
  }

  function readField(event, line) {
    if (line.startsWith(":")) {
      return; // a comment: the server's heartbeat
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) {
      value = value.slice(1);
    }
    if (field === "event") {
      event.type = value;
    } else if (field === "data") {
      event.data.push(value);
    } else if (field === "id" && !value.includes("\0")) {
      event.id = value;
    } else if (field === "retry" && /^\d+$/.test(value)) {
      state.baseRetryMs = Number(value);
    }
  }

  function dispatch(event) {
    if (event.id !== null) {
      state.lastEventId = event.id;
    }
    if (event.type !== "alert" || event.data.length === 0) {
      return;
    }
    try {
      showAlert(JSON.parse(event.data.join("\n")));
    } catch (error) {
      console.warn("skipping an alert that is not valid JSON:", error.message);
    }
  }

  // --- rendering -----------------------------------------------------------------------------------

  function showAlert(alert) {
    if (typeof alert.alertId !== "string" || state.seen.has(alert.alertId)) {
      return;
    }
    state.seen.add(alert.alertId);
    ui.list.prepend(alertElement(alert));
    while (ui.list.children.length > MAX_ALERTS) {
      ui.list.lastElementChild.remove();
    }
    ui.empty.hidden = true;
  }

  function alertElement(alert) {
    const severity = SEVERITIES.has(alert.severity) ? alert.severity : "info";
    const item = element("li", `alert alert--${severity}`);
    item.dataset.alertId = alert.alertId;
    item.dataset.kind = String(alert.kind || "");
    item.dataset.severity = severity;

    const header = element("div", "alert__header");
    header.append(
      element("span", `badge badge--${severity}`, severity, "severity"),
      element("h3", "alert__title", alert.title, "title"),
      timeElement(alert.raisedAt),
    );

    const meta = element("p", "alert__meta");
    meta.append(
      element("span", "alert__kind", alert.kind, "kind"),
      document.createTextNode(" · "),
      element("span", "alert__subject", alert.subject, "subject"),
    );
    if (alert.source) {
      meta.append(document.createTextNode(" · from "), element("span", "", alert.source, "source"));
    }

    item.append(header, meta);
    const details = detailsTable(alert.details);
    if (details) {
      item.append(details);
    }
    return item;
  }

  function timeElement(raisedAt) {
    const time = element("time", "alert__time", "", "raisedAt");
    const moment = new Date(raisedAt);
    if (!Number.isNaN(moment.getTime())) {
      time.dateTime = moment.toISOString();
      time.textContent = moment.toLocaleString();
      time.title = moment.toISOString();
    } else {
      time.textContent = String(raisedAt || "");
    }
    return time;
  }

  function detailsTable(details) {
    if (!details || typeof details !== "object") {
      return null;
    }
    const entries = Object.entries(details);
    if (entries.length === 0) {
      return null;
    }
    const table = element("table", "details");
    table.dataset.field = "details";
    const body = element("tbody");
    for (const [key, value] of entries) {
      const row = element("tr");
      const name = element("th", "", key);
      name.scope = "row";
      row.append(name, element("td", "", typeof value === "object" ? JSON.stringify(value) : String(value)));
      body.append(row);
    }
    table.append(body);
    return table;
  }

  function element(tag, className, text, field) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    if (field) {
      node.dataset.field = field;
    }
    return node;
  }

  // --- start ---------------------------------------------------------------------------------------

  ui.form.addEventListener("submit", (submitted) => {
    submitted.preventDefault();
    const token = ui.tokenInput.value.trim();
    if (!token) {
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    ui.tokenInput.value = "";
    disconnect();
    state.failures = 0;
    connect();
  });

  ui.signOut.addEventListener("click", () => {
    disconnect();
    sessionStorage.removeItem(TOKEN_KEY);
    setConnection("disconnected", "Not connected");
    showTokenForm("");
  });

  window.addEventListener("hashchange", () => {
    takeTokenFromFragment();
    disconnect();
    connect();
  });

  takeTokenFromFragment();
  connect();
})();
