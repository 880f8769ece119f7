/* autodock dashboard: state from /api/v1, live updates from /api/v1/stream (SSE). */
"use strict";

(() => {
  const TOKEN_KEY = "autodock.token";
  const readMode = document.body.dataset.readMode;
  const $ = (id) => document.getElementById(id);
  const state = { services: [], deploys: [], pauses: [], digests: new Map(), loaded: false };

  // ------------------------------------------------------------------ helpers
  const esc = (s) =>
    String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  const short = (digest) => (digest ? digest.split(":").pop().slice(0, 12) : "–");
  const ago = (t) => {
    if (!t) return "";
    const s = Math.max(0, Date.now() / 1000 - t);
    if (s < 60) return `${Math.round(s)}s ago`;
    if (s < 3600) return `${Math.round(s / 60)}m ago`;
    if (s < 86400) return `${Math.round(s / 3600)}h ago`;
    return new Date(t * 1000).toLocaleString();
  };
  const secs = (d) => (d == null ? "" : d < 60 ? `${d.toFixed(1)}s` : `${Math.floor(d / 60)}m ${Math.round(d % 60)}s`);
  const statusOf = (d) => (d.held ? "held" : d.status);
  const pill = (status, text) => `<span class="pill s-${esc(status)}">${esc(text ?? status)}</span>`;

  function toast(text, error = false) {
    const el = $("toast");
    el.textContent = text;
    el.className = "toast" + (error ? " error" : "");
    el.hidden = false;
    clearTimeout(toast.timer);
    toast.timer = setTimeout(() => (el.hidden = true), 4000);
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || "";
  function askToken() {
    const value = window.prompt("API token (kept in this tab's sessionStorage only):", token());
    if (value !== null) sessionStorage.setItem(TOKEN_KEY, value.trim());
    updateTokenButton();
    return value !== null && value.trim() !== "";
  }
  function updateTokenButton() {
    $("token-btn").textContent = token() ? "Token set ✓" : "Set token";
  }

  async function api(path, options = {}, retried = false) {
    const headers = { Accept: "application/json", ...(options.headers || {}) };
    if (token()) headers.Authorization = `Bearer ${token()}`;
    const res = await fetch(path, { ...options, headers });
    if (res.status === 401 && !retried && askToken()) return api(path, options, true);
    let body = null;
    try { body = await res.json(); } catch (_) { /* empty */ }
    if (!res.ok) throw new Error((body && (body.detail || body.error)) || `${res.status} ${res.statusText}`);
    return body;
  }

  // ------------------------------------------------------------------ loading
  async function load() {
    const managed = $("managed-only").checked ? "?managed=true" : "";
    try {
      const [svc, dep, pau] = await Promise.all([
        api(`/api/v1/services${managed}`).catch((e) => ({ services: null, error: e })),
        api("/api/v1/deploys?limit=60"),
        api("/api/v1/pauses"),
      ]);
      state.deploys = dep.deploys;
      state.pauses = pau.pauses;
      if (svc.services) state.services = svc.services;
      render(svc.error);
      state.loaded = true;
    } catch (e) {
      toast(`cannot load: ${e.message}`, true);
    }
  }

  let pending = null;
  function refreshSoon(delay = 200) {
    if (pending) return;
    pending = setTimeout(() => { pending = null; load(); }, delay);
  }

  // ------------------------------------------------------------------ rendering
  function render(servicesError) {
    const active = state.deploys.filter((d) => d.status === "running" || d.status === "queued");
    const day = Date.now() / 1000 - 86400;
    const recent = state.deploys.filter((d) => d.created_at >= day);
    $("stat-services").textContent = state.services.length;
    $("stat-active").textContent = active.length;
    $("stat-ok").textContent = recent.filter((d) => d.status === "succeeded").length;
    $("stat-failed").textContent = recent.filter((d) => d.status === "failed").length;
    $("stat-paused").textContent = state.pauses.length;
    renderActive(active);
    renderServices(servicesError);
    renderHistory();
  }

  function progressOf(d) {
    const m = /(\d+)\/(\d+) tasks (updated|rolled back)/.exec(d.progress || "");
    if (!m) return { text: d.held ? "held: paused" : d.progress || d.status, pct: null };
    const [x, y] = [Number(m[1]), Number(m[2])];
    return { text: `${x} of ${y} tasks ${m[3]}`, pct: y ? Math.round((100 * x) / y) : 0 };
  }

  function renderActive(active) {
    $("active-card").hidden = active.length === 0;
    $("active").innerHTML = active
      .map((d) => {
        const p = progressOf(d);
        const bar = p.pct == null
          ? `<div class="bar ${d.status === "running" ? "indeterminate" : ""}"><span style="width:0"></span></div>`
          : `<div class="bar"><span style="width:${p.pct}%"></span></div>`;
        return `<div class="active-item" data-deploy="${d.id}">
          <div><div class="svc-name">${esc(d.target)} ${pill(statusOf(d))}</div>
            <div class="svc-sub mono">${esc(d.repo)}:${esc(d.tag)} @ ${short(d.digest)}</div></div>
          <div>${bar}<div class="progress-text">${esc(p.text)}</div></div></div>`;
      })
      .join("");
  }

  function replicas(s) {
    const { running, desired } = s.replicas;
    const cls = running >= desired ? (desired === 0 ? "s-unchanged" : "s-ok") : running === 0 ? "s-bad" : "s-warn";
    return `<span class="pill ${cls}">${running}/${desired}</span>`;
  }

  function renderServices(error) {
    const body = $("services");
    if (error && !state.services.length) {
      body.innerHTML = `<tr><td colspan="8" class="muted">cannot list services: ${esc(error.message)}</td></tr>`;
      return;
    }
    if (!state.services.length) {
      body.innerHTML = `<tr><td colspan="8" class="muted">no services${$("managed-only").checked ? " deployed by a rule" : ""}</td></tr>`;
      return;
    }
    body.innerHTML = state.services
      .map((s) => {
        const last = s.last_deploy;
        const lastCell = last
          ? `${pill(statusOf(last))} <span class="muted small">${ago(last.finished_at || last.created_at)}</span>`
          : `<span class="muted">never</span>`;
        const rules = s.rules.length
          ? s.rules.map((r) => `<span class="chip${s.paused_by.includes("rule:" + r) ? " paused" : ""}">${esc(r)}</span>`).join("")
          : `<span class="muted small">none</span>`;
        const nodes = s.nodes.map((n) => `${esc(n.node)}${n.tasks > 1 ? ` ×${n.tasks}` : ""}`).join(", ") || "–";
        const update = s.update_state && s.update_state !== "completed" ? ` <span class="muted small">(${esc(s.update_state)})</span>` : "";
        return `<tr data-service="${esc(s.name)}">
          <td><div class="svc-name">${esc(s.name)}${s.paused ? " " + pill("paused") : ""}</div><div class="svc-sub">${esc(s.mode)}${update}</div></td>
          <td><div class="mono small">${esc(s.image_name)}</div>${s.tag ? `<span class="tag">${esc(s.tag)}</span>` : ""}</td>
          <td><span class="digest" title="${esc(s.digest || "")}">${short(s.digest)}</span></td>
          <td>${replicas(s)}</td>
          <td class="small">${nodes}</td>
          <td><div class="rules">${rules}</div></td>
          <td>${lastCell}</td>
          <td><div class="actions">
            <button class="btn danger" data-act="rollback" data-name="${esc(s.name)}" ${s.previous_image ? "" : "disabled"} title="${esc(s.previous_image ? "back to " + s.previous_image : "no previous spec")}">Rollback</button>
            ${s.paused && s.paused_by.includes("service:" + s.name)
              ? `<button class="btn primary" data-act="resume" data-name="${esc(s.name)}">Resume</button>`
              : `<button class="btn warn" data-act="pause" data-name="${esc(s.name)}">Pause</button>`}
          </div></td></tr>`;
      })
      .join("");
    for (const s of state.services) {
      const before = state.digests.get(s.name);
      if (state.loaded && before !== undefined && before !== s.digest) {
        const row = body.querySelector(`tr[data-service="${CSS.escape(s.name)}"]`);
        if (row) row.classList.add("flash");
      }
      state.digests.set(s.name, s.digest);
    }
  }

  function renderHistory() {
    const list = $("history");
    $("history-note").textContent = state.deploys.length ? `latest ${state.deploys.length} deploys` : "";
    if (!state.deploys.length) {
      list.innerHTML = `<li class="empty">no deploys yet: push an image</li>`;
      return;
    }
    list.innerHTML = state.deploys
      .map((d) => {
        const st = statusOf(d);
        const image = `${d.registry ? d.registry + "/" : ""}${d.repo}:${d.tag}`;
        const meta = [
          `#${d.id}`,
          `rule ${esc(d.rule)}`,
          `via ${esc(d.source)}${d.pusher ? " by " + esc(d.pusher) : ""}`,
          d.duration != null ? `took ${secs(d.duration)}` : "",
          d.attempts > 1 ? `${d.attempts} attempts` : "",
        ].filter(Boolean).join(" · ");
        const output = (d.output || "").trim();
        const detail = [d.error, output.length > 2000 ? "…" + output.slice(-2000) : output]
          .filter(Boolean).join("\n");
        const error = d.status === "failed" && detail
          ? `<pre class="t-error">${esc(detail)}</pre>
             <div class="t-actions"><button class="btn" data-act="retry" data-id="${d.id}">Retry</button></div>`
          : d.status === "awaiting_approval"
          ? `<div class="t-actions"><button class="btn" data-act="approve" data-id="${d.id}">Approve</button>
             <button class="btn" data-act="reject" data-id="${d.id}">Reject</button></div>`
          : "";
        const progress = d.status === "running" && d.progress ? ` <span class="muted small">${esc(progressOf(d).text)}</span>` : "";
        return `<li class="t-${esc(st)}" data-deploy="${d.id}">
          <div class="t-row">${pill(st)} <strong>${esc(d.target)}</strong>
            <span class="mono small">${esc(image)}</span> <span class="digest">${short(d.digest)}</span>${progress}
            <span class="when" title="${new Date(d.created_at * 1000).toISOString()}">${ago(d.created_at)}</span></div>
          <div class="t-meta">${meta}</div>${error}</li>`;
      })
      .join("");
  }

  // ------------------------------------------------------------------ actions
  async function act(button) {
    const { act: what, name, id } = button.dataset;
    const calls = {
      rollback: [`/api/v1/services/${encodeURIComponent(name)}/rollback`, `Roll ${name} back to its previous spec?`],
      pause: [`/api/v1/services/${encodeURIComponent(name)}/pause`, null],
      resume: [`/api/v1/services/${encodeURIComponent(name)}/resume`, null],
      retry: [`/api/v1/deploys/${id}/retry`, null],
      approve: [`/api/v1/deploys/${id}/approve`, `Deploy #${id} now?`],
      reject: [`/api/v1/deploys/${id}/reject`, `Refuse deploy #${id}?`],
    };
    const [path, question] = calls[what];
    if (question && !window.confirm(question)) return;
    if (!token() && !askToken()) return;
    button.disabled = true;
    try {
      const body = what === "approve" || what === "reject" ? JSON.stringify({ by: "dashboard" }) : "{}";
      const reply = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body });
      toast(reply.deploy ? `${what}: deploy #${reply.deploy} queued` : `${what}: done`);
      refreshSoon(0);
    } catch (e) {
      toast(`${what} failed: ${e.message}`, true);
    } finally {
      button.disabled = false;
    }
  }

  document.addEventListener("click", (ev) => {
    const button = ev.target.closest("button[data-act]");
    if (button) act(button);
  });
  $("token-btn").addEventListener("click", () => { askToken(); refreshSoon(0); });
  $("managed-only").addEventListener("change", () => refreshSoon(0));

  // ------------------------------------------------------------------ live updates
  function connect() {
    const query = readMode === "token" && token() ? `?token=${encodeURIComponent(token())}` : "";
    const source = new EventSource(`/api/v1/stream${query}`);
    const live = $("live");
    source.onopen = () => {
      live.className = "live on";
      live.lastElementChild.textContent = "live";
      refreshSoon(0);
    };
    source.onerror = () => {
      live.className = "live off";
      live.lastElementChild.textContent = "reconnecting…";
    };
    for (const kind of ["event", "deploy", "pause", "resync"]) {
      source.addEventListener(kind, () => refreshSoon());
    }
  }

  updateTokenButton();
  if (readMode === "token" && !token()) askToken();
  load();
  connect();
  setInterval(() => { if (state.loaded) render(); }, 15000); // keep "… ago" fresh
})();
