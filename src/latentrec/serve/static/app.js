// latentrec web page: plain JavaScript, no build step. Talks only to this app's /api.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = { info: null, ratings: new Map(), candidates: new Map(), lastSimilar: null };

// ------------------------------------------------------------------ helpers
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) node.append(c);
  return node;
}

function status(message, isError = false) {
  const box = $("#status");
  box.textContent = message;
  box.classList.toggle("error", isError);
  box.classList.toggle("show", Boolean(message));
  clearTimeout(status.timer);
  if (message) status.timer = setTimeout(() => box.classList.remove("show"), isError ? 6000 : 2500);
}

async function api(path, options = {}) {
  let resp;
  try {
    resp = await fetch(path, { headers: { "accept": "application/json", "content-type": "application/json" }, ...options });
  } catch (err) {
    throw new Error("The server cannot be reached.");
  }
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.error || `Request failed (${resp.status})`);
  return body;
}

// one path segment per id: dot segments encoded too, so "." / ".." are not resolved away
const enc = (s) => { const e = encodeURIComponent(s); return e === "." || e === ".." ? e.replace(/\./g, "%2E") : e; };
const label = (item) => item.year ? `${item.name} (${item.year})` : item.name;

function scoreText(item, kind) {
  if (item.score === null || item.score === undefined) return null;
  if (kind === "similar") return `${Math.round(item.score * 100)}% match`;
  if (kind === "rating") return `★ ${item.score.toFixed(1)}`;  // a predicted rating (the API's score_kind)
  return null;
}

function card(item, { onclick, kind, headingLevel } = {}) {
  const img = el("img", { src: item.poster_url, alt: `Poster of ${label(item)}`, loading: "lazy",
                          width: "300", height: "450", decoding: "async" });
  const badge = scoreText(item, kind);
  const body = [
    el("span", { class: "poster" }, img, badge ? el("span", { class: "badge", text: badge }) : null),
    el("span", { class: "card-title", text: item.name }),
    el("span", { class: "card-meta", text: [item.year, item.genres.slice(0, 3).join(", ")].filter(Boolean).join(" · ") }),
  ];
  const inner = onclick
    ? el("button", { type: "button", class: "card", "data-id": String(item.id),
                     "aria-label": `${label(item)}. Show similar movies`, onclick }, ...body)
    : el("div", { class: "card static", "data-id": String(item.id) }, ...body);
  return el("li", {}, inner);
}

function fill(list, items, opts, emptyText) {
  list.replaceChildren(...items.map((it) => card(it, opts)));
  if (!items.length && emptyText) list.append(el("li", { class: "empty", text: emptyText }));
}

// ------------------------------------------------------------------ tabs
const TABS = ["similar", "user", "rate"];

function selectTab(name, focus = false) {
  for (const t of TABS) {
    const tab = $(`#tab-${t}`);
    const on = t === name;
    tab.setAttribute("aria-selected", String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#panel-${t}`).hidden = !on;
    if (on && focus) tab.focus();
  }
}

function setupTabs() {
  TABS.forEach((t, i) => {
    const tab = $(`#tab-${t}`);
    tab.addEventListener("click", () => { location.hash = t === "similar" ? "" : t; selectTab(t); });
    tab.addEventListener("keydown", (ev) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[ev.key];
      let next = null;
      if (step) next = TABS[(i + step + TABS.length) % TABS.length];
      if (ev.key === "Home") next = TABS[0];
      if (ev.key === "End") next = TABS[TABS.length - 1];
      if (next) { ev.preventDefault(); selectTab(next, true); location.hash = next === "similar" ? "" : next; }
    });
  });
}

// ------------------------------------------------------------------ similar movies
// from a card or a chip: the clicked element disappears, so focus moves to the new movie's title
function showItem(id, focus = true) {
  state.focusFeatured = focus;
  location.hash = `item=${enc(id)}`;
}

async function renderSimilar(id) {
  selectTab("similar");
  const featured = $("#featured");
  featured.setAttribute("aria-busy", "true");
  try {
    const data = await api(`/api/items/${enc(id)}/similar?n=10`);
    const it = data.item;
    const facts = [it.year, it.genres.join(", "), `${it.popularity} ratings`].filter(Boolean).join(" · ");
    featured.replaceChildren(
      el("img", { src: it.poster_url, alt: `Poster of ${label(it)}`, width: "300", height: "450" }),
      el("div", { class: "featured-text" },
        el("p", { class: "eyebrow", text: "Selected movie" }),
        el("h1", { id: "featured-title", tabindex: "-1", text: it.name }),
        el("p", { class: "facts", text: facts }),
        it.imdb_id ? el("p", {}, el("a", { href: `https://www.imdb.com/title/${enc(it.imdb_id)}/`, rel: "noopener noreferrer", target: "_blank", text: "IMDb page" })) : null,
        el("p", { class: "help", text: "The movies below are its nearest neighbours in the model's latent space. Pick one to explore further." })));
    featured.hidden = false;
    $("#similar-heading").textContent = `Most similar to ${it.name}`;
    fill($("#similar-grid"), data.similar, { kind: "similar", onclick: (ev) => showItem(ev.currentTarget.dataset.id) },
         "No similar movies.");
    state.lastSimilar = id;
    document.title = `${it.name} · latentrec`;
    if (state.focusFeatured) { state.focusFeatured = false; $("#featured-title").focus(); }
    return data;
  } catch (err) {
    status(err.message, true);
  } finally {
    featured.removeAttribute("aria-busy");
  }
}

async function search(ev) {
  ev.preventDefault();
  const q = $("#search-input").value.trim();
  const matches = $("#matches");
  if (!q) return;
  try {
    const data = await api(`/api/items?q=${enc(q)}&limit=8`);
    if (!data.items.length) {
      matches.replaceChildren(el("p", { class: "empty", text: `No movie matches “${q}”.` }));
      return;
    }
    matches.replaceChildren(...data.items.slice(1).map((it) =>
      el("button", { type: "button", class: "chip", onclick: () => showItem(it.id) }, label(it))));
    if (data.items.length > 1) matches.prepend(el("span", { class: "chips-label", text: "Also matching:" }));
    const first = String(data.items[0].id);
    if (location.hash === `#item=${enc(first)}`) renderSimilar(first); else showItem(first, false);
  } catch (err) {
    status(err.message, true);
  }
}

async function renderPopular() {
  $("#featured").hidden = true;
  $("#featured").replaceChildren();
  $("#similar-heading").textContent = "Popular movies: pick one";
  try {
    const data = await api("/api/items?limit=12");
    fill($("#similar-grid"), data.items, { onclick: (ev) => showItem(ev.currentTarget.dataset.id) });
  } catch (err) { status(err.message, true); }
}

// ------------------------------------------------------------------ users
async function renderUser(id) {
  selectTab("user");
  $("#user-input").value = id;
  const n = $("#user-n").value;
  const exclude = $("#user-exclude").checked;
  try {
    const [recs, hist] = await Promise.all([
      api(`/api/users/${enc(id)}/recommendations?n=${n}&exclude_seen=${exclude}`),
      api(`/api/users/${enc(id)}/history?limit=50`),
    ]);
    $("#user-recs-heading").textContent = `Top ${recs.items.length} for user ${recs.user}` +
      (recs.score_kind === "rating" ? " (★ = predicted rating)" : "");
    fill($("#user-recs"), recs.items, { kind: recs.score_kind, onclick: (ev) => showItem(ev.currentTarget.dataset.id) },
         "Nothing left to recommend.");
    $("#user-history-heading").textContent = `Rated by user ${hist.user} (${hist.count})`;
    $("#user-history").replaceChildren(...hist.items.map((it) => el("li", {},
      el("img", { src: it.poster_url, alt: "", width: "40", height: "60", loading: "lazy" }),
      el("span", { class: "h-title" }, el("button", { type: "button", class: "link", onclick: () => showItem(it.id) }, label(it))),
      el("span", { class: "h-rating", "aria-label": `rated ${it.rating}`, text: it.rating === null ? "" : `★ ${it.rating}` }))));
  } catch (err) {
    $("#user-recs").replaceChildren(el("li", { class: "empty", text: err.message }));
    $("#user-history").replaceChildren();
    status(err.message, true);
  }
}

async function loadUsers() {
  try {
    const data = await api("/api/users?limit=200");
    state.userCount = data.count;
    $("#user-list").replaceChildren(...data.users.map((u) => el("option", { value: String(u.id), label: `${u.count} ratings` })));
  } catch (err) { /* the datalist is a convenience */ }
}

async function randomUser() {
  const count = state.userCount || 1;
  try {
    const data = await api(`/api/users?offset=${Math.floor(Math.random() * count)}&limit=1`);
    if (data.users.length) location.hash = `user=${enc(data.users[0].id)}`;
  } catch (err) { status(err.message, true); }
}

// ------------------------------------------------------------------ visitor (fold-in)
function starScale() {
  const scale = state.info && state.info.rating_scale;
  if (!scale) return [1, 2, 3, 4, 5];
  const lo = Math.max(1, Math.ceil(scale[0])), hi = Math.floor(scale[1]);
  const out = [];
  for (let v = lo; v <= hi; v++) out.push(v);
  return out.length ? out : [scale[1]];
}

function rateCard(item) {
  const name = `rate-${item.id}`;
  const current = state.ratings.get(String(item.id));
  const stars = starScale().map((v) => {
    const id = `${name}-${v}`;
    return [el("input", { type: "radio", name, id, value: String(v), checked: current === v,
                          onchange: (ev) => { setRating(item, v); ev.target.closest(".card").classList.add("rated"); } }),
            el("label", { for: id, title: `${v} of ${starScale().slice(-1)[0]}` },
               el("span", { "aria-hidden": "true", text: "★" }), el("span", { class: "sr", text: `${v} stars` }))];
  }).flat();
  return el("li", {}, el("div", { class: "card static" + (current ? " rated" : "") },
    el("span", { class: "poster" }, el("img", { src: item.poster_url, alt: `Poster of ${label(item)}`, loading: "lazy", width: "300", height: "450" })),
    el("span", { class: "card-title", text: item.name }),
    el("span", { class: "card-meta", text: [item.year, item.genres.slice(0, 2).join(", ")].filter(Boolean).join(" · ") }),
    el("fieldset", { class: "stars" }, el("legend", { class: "sr", text: `Your rating of ${label(item)}` }), ...stars)));
}

function setRating(item, value) {
  state.ratings.set(String(item.id), value);
  state.candidates.set(String(item.id), item);
  updateRated();
}

function updateRated() {
  const n = state.ratings.size;
  const names = [...state.ratings.keys()].map((k) => state.candidates.get(k)?.name).filter(Boolean);
  $("#rated-summary").textContent = n ? `You rated ${n} movie${n > 1 ? "s" : ""}: ${names.join(", ")}.` : "No ratings yet.";
  $("#rate-go").disabled = n === 0;
  $("#rate-clear").disabled = n === 0;
}

async function rateSearch(ev) {
  if (ev) ev.preventDefault();
  const q = $("#rate-input").value.trim();
  try {
    const data = await api(`/api/items?q=${enc(q)}&limit=12`);
    $("#rate-candidates-heading").textContent = q ? `Movies matching “${q}”` : "Popular movies";
    for (const it of data.items) state.candidates.set(String(it.id), it);
    $("#rate-candidates").replaceChildren(...data.items.map(rateCard));
    if (!data.items.length) $("#rate-candidates").append(el("li", { class: "empty", text: "No movie matches." }));
  } catch (err) { status(err.message, true); }
}

async function visitorRecommend() {
  const ratings = [...state.ratings.entries()].map(([id, rating]) => {
    const item = state.candidates.get(id);
    return { item: item ? item.id : id, rating };
  });
  try {
    const data = await api("/api/recommendations", { method: "POST", body: JSON.stringify({ ratings, n: 12 }) });
    $("#rate-recs-heading").hidden = false;
    fill($("#rate-recs"), data.items, { kind: data.score_kind, onclick: (ev) => showItem(ev.currentTarget.dataset.id) },
         "Nothing to recommend.");
    $("#rate-recs-heading").scrollIntoView({ behavior: "smooth", block: "start" });
  } catch (err) { status(err.message, true); }
}

// ------------------------------------------------------------------ routing
function route() {
  const hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  if (hash.startsWith("item=")) return renderSimilar(hash.slice(5));
  if (hash.startsWith("user=")) return renderUser(hash.slice(5));
  if (hash === "user") return selectTab("user");
  if (hash === "rate") return selectTab("rate");
  selectTab("similar");
  if (state.lastSimilar === null) renderPopular();
}

async function init() {
  setupTabs();
  $("#search-form").addEventListener("submit", search);
  $("#user-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("#user-input").value.trim();
    if (!id) return;
    const target = `user=${enc(id)}`;
    if (location.hash === `#${target}`) renderUser(id); else location.hash = target;
  });
  $("#random-user").addEventListener("click", randomUser);
  $("#rate-search").addEventListener("submit", rateSearch);
  $("#rate-go").addEventListener("click", visitorRecommend);
  $("#rate-clear").addEventListener("click", () => { state.ratings.clear(); updateRated(); rateSearch(); });
  window.addEventListener("hashchange", route);
  try {
    state.info = await api("/api/health");
    const i = state.info;
    $("#model-info").textContent = `${i.model} · ${i.n_items.toLocaleString()} items · ${i.n_users.toLocaleString()} users`;
  } catch (err) {
    $("#model-info").textContent = "Model unavailable";
    status(err.message, true);
  }
  loadUsers();
  rateSearch();
  await route();
  document.body.dataset.ready = "true";
}

document.addEventListener("DOMContentLoaded", init);
