// grader review: keyboard scoring, saving, and math typesetting for the review pages.
// Served as a static file: the Content-Security-Policy allows no inline script.
"use strict";

(function () {
  const body = document.body;
  const token = body.dataset.token;
  const api = body.dataset.api;

  // --- math -------------------------------------------------------------------------------------
  // The server leaves TeX as text inside .math elements; KaTeX (vendored, optional) typesets it.
  // katex.render builds DOM nodes and sets styles through the CSSOM, which a strict CSP allows.
  function typeset(root) {
    if (!window.katex) return;
    root.querySelectorAll(".math").forEach(function (el) {
      if (el.dataset.typeset) return;
      const tex = el.textContent;
      try {
        // throwOnError: KaTeX's own error display sets a style attribute, which the CSP refuses
        window.katex.render(tex, el, {
          displayMode: el.classList.contains("display"),
          throwOnError: true, trust: false, strict: "ignore", maxSize: 20, maxExpand: 500,
        });
        el.title = tex;
      } catch (err) {
        el.textContent = tex; // the source stays readable, marked
        el.classList.add("tex-error");
        el.title = String(err && err.message || err);
      }
      el.dataset.typeset = "1";
    });
  }

  // --- cards and the current one ----------------------------------------------------------------
  const cards = Array.from(document.querySelectorAll("[data-card]"));
  let current = -1;

  function select(index) {
    if (!cards.length) return;
    index = Math.max(0, Math.min(cards.length - 1, index));
    if (current >= 0 && cards[current]) cards[current].classList.remove("current");
    current = index;
    const card = cards[current];
    card.classList.add("current");
    card.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  }

  // Shift+J / Shift+K: the next / previous group's head (pages without groups: the next card).
  function selectGroup(step) {
    const heads = cards.map(function (c, i) { return c.dataset.kind === "group" ? i : -1; }).filter(function (i) { return i >= 0; });
    if (!heads.length) { select(current + step); return; }
    const target = step > 0 ? heads.find(function (i) { return i > current; }) : heads.slice().reverse().find(function (i) { return i < current; });
    if (target !== undefined) select(target);
  }

  function cardOf(el) {
    return el.closest("[data-card]");
  }

  function pointsField(card) { return card.querySelector("input.points"); }
  function commentField(card) { return card.querySelector("textarea.comment"); }

  function setStatus(card, text, kind) {
    const out = card.querySelector("output.status");
    if (out) out.textContent = text;
    card.classList.remove("ok", "conflict", "error", "busy");
    if (kind) card.classList.add(kind);
  }

  // --- saving -----------------------------------------------------------------------------------
  function membersOf(groupCard) {
    return Array.from(groupCard.closest("section.group").querySelectorAll("[data-kind=answer]"));
  }

  function editFor(card, points, comment) {
    return {
      submission: card.dataset.submission, item: card.dataset.item,
      points: points, comment: comment, version: parseInt(card.dataset.version, 10),
    };
  }

  function show(card, result) {
    // Put the cell as the gradebook holds it into the card.
    card.dataset.version = String(result.version);
    const points = result.points === null ? "" : String(result.points);
    pointsField(card).value = points;
    commentField(card).value = result.comment;
    const badge = card.querySelector(".badge");
    if (badge) badge.textContent = points === "" ? "open" : points + " / " + card.dataset.max;
    card.classList.toggle("scored", points !== "");
  }

  function report(card, result) {
    if (result.status === "saved" || result.status === "unchanged") {
      show(card, result);
      setStatus(card, result.status === "saved" ? "saved" : "saved (no change)", "ok");
    } else if (result.status === "stale") {
      const mine = pointsField(card).value;
      show(card, result);
      setStatus(card, "Not saved: " + result.message.replace(/^not saved: /, "") + ". It now reads " +
        (result.points === null ? "open" : result.points) + (result.comment ? " (“" + result.comment + "”)" : "") +
        "; your " + (mine === "" ? "empty value" : mine) + " was not kept. Enter again to save yours over it.", "conflict");
    } else {
      setStatus(card, result.message || "not saved", "error");
    }
  }

  // The TA's name (optional) goes with every save, so that a refused edit can say who won.
  const taField = document.getElementById("ta-name");
  try { taField.value = window.localStorage.getItem("grader-review-ta") || ""; } catch (err) { /* no storage */ }
  taField.addEventListener("change", function () {
    try { window.localStorage.setItem("grader-review-ta", taField.value.trim()); } catch (err) { /* no storage */ }
  });

  async function post(edits) {
    const response = await fetch(api, {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Review-Token": token },
      body: JSON.stringify({ edits: edits, ta: taField.value.trim() }),
      credentials: "same-origin",
    });
    const payload = await response.json().catch(function () { return {}; });
    if (!response.ok) throw new Error(payload.error || ("HTTP " + response.status));
    return payload.results;
  }

  async function save(card) {
    const points = pointsField(card).value.trim();
    const comment = commentField(card).value;
    if (card.dataset.kind === "group") {
      const members = membersOf(card);
      if (points === "" && comment.trim() === "") {
        setStatus(card, "type points (or a comment) for the whole group first", "error");
        return false;
      }
      setStatus(card, "saving " + members.length + "…", "busy");
      members.forEach(function (m) { setStatus(m, "saving…", "busy"); });
      try {
        const results = await post(members.map(function (m) {
          return editFor(m, points === "" ? pointsField(m).value.trim() : points, comment.trim() === "" ? commentField(m).value : comment);
        }));
        results.forEach(function (r, i) { report(members[i], r); });
        const bad = results.filter(function (r) { return r.status === "stale" || r.status === "invalid"; }).length;
        setStatus(card, bad ? (results.length - bad) + " saved, " + bad + " not (see below)" : "all " + results.length + " saved",
          bad ? "conflict" : "ok");
        progress();
        return bad === 0;
      } catch (err) {
        setStatus(card, "not saved: " + err.message, "error");
        return false;
      }
    }
    setStatus(card, "saving…", "busy");
    try {
      const results = await post([editFor(card, points, comment)]);
      report(card, results[0]);
      progress();
      return results[0].status === "saved" || results[0].status === "unchanged";
    } catch (err) {
      setStatus(card, "not saved: " + err.message, "error");
      return false;
    }
  }

  function progress() {
    const el = document.querySelector("[data-progress]");
    if (!el) return;
    const answers = document.querySelectorAll("[data-kind=answer]");
    const scored = document.querySelectorAll("[data-kind=answer].scored");
    el.textContent = scored.length + " of " + answers.length + " scored";
  }

  async function saveAndNext(card) {
    const ok = await save(card);
    const index = cards.indexOf(card);
    if (ok) select(index + 1); else select(index);
  }

  // A suggestion goes into the field only; saving it is the TA's Enter.
  function takeSuggestion(card) {
    const button = card.querySelector("button.suggest");
    if (!button) return;
    pointsField(card).value = button.dataset.points;
    setStatus(card, "suggestion copied: Enter saves it", "");
  }

  // --- keyboard ---------------------------------------------------------------------------------
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    const card = t instanceof Element ? cardOf(t) : null;
    if (t instanceof HTMLTextAreaElement) {
      if (e.key === "Enter" && !e.shiftKey && card) { e.preventDefault(); saveAndNext(card); }
      else if (e.key === "Escape" && card) { e.preventDefault(); select(cards.indexOf(card)); }
      return;
    }
    if (t instanceof HTMLInputElement) {
      // Points are never letters, so the command keys keep working in the points field.
      if (!card || !t.classList.contains("points")) return;
      if (e.key === "j" || e.key === "k") {
        e.preventDefault();
        select(cards.indexOf(card) + (e.key === "j" ? 1 : -1));
      } else if (e.key === "J" || e.key === "K") { e.preventDefault(); selectGroup(e.key === "J" ? 1 : -1); }
      else if (e.key === "c") { e.preventDefault(); commentField(card).focus(); }
      else if (e.key === "s") { e.preventDefault(); takeSuggestion(card); }
      else if (e.key === "Escape") { e.preventDefault(); select(cards.indexOf(card)); }
      return; // Enter submits the form (handled below)
    }
    if (t instanceof HTMLButtonElement || t instanceof HTMLAnchorElement || t instanceof HTMLSelectElement) {
      if (e.key === "Enter" || e.key === " ") return;
    }
    if (e.key === "?") { e.preventDefault(); const h = document.getElementById("help"); h.hidden = !h.hidden; return; }
    if (!cards.length) return;
    if (current < 0 && !"jkJK".includes(e.key)) select(0);
    const here = cards[Math.max(current, 0)];
    if (e.key === "J" || e.key === "K") { e.preventDefault(); selectGroup(e.key === "J" ? 1 : -1); }
    else if (e.key === "j") { e.preventDefault(); select(current < 0 ? 0 : current + 1); }
    else if (e.key === "k") { e.preventDefault(); select(current < 0 ? 0 : current - 1); }
    else if (/^[0-9.]$/.test(e.key)) {
      e.preventDefault();
      const field = pointsField(here);
      field.value = e.key;
      field.focus();
      field.setSelectionRange(field.value.length, field.value.length);
    } else if (e.key === "Enter") { e.preventDefault(); saveAndNext(here); }
    else if (e.key === "c") { e.preventDefault(); commentField(here).focus(); }
    else if (e.key === "s") { e.preventDefault(); takeSuggestion(here); }
  });

  document.addEventListener("submit", function (e) {
    const card = cardOf(e.target);
    if (!card) return;
    e.preventDefault();
    saveAndNext(card);
  });

  document.addEventListener("click", function (e) {
    const t = e.target;
    if (!(t instanceof Element)) return;
    if (t.matches("button.suggest")) { takeSuggestion(cardOf(t)); return; }
    const card = cardOf(t);
    if (card && cards.indexOf(card) !== current) {
      if (current >= 0) cards[current].classList.remove("current");
      current = cards.indexOf(card);
      card.classList.add("current");
    }
  });

  // Grow comment fields with their text.
  document.addEventListener("input", function (e) {
    const t = e.target;
    if (t instanceof HTMLTextAreaElement) { t.rows = Math.min(8, Math.max(1, t.value.split("\n").length)); }
  });

  function ready() {
    typeset(document);
    body.dataset.ready = "1";
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", ready); else ready();
})();
