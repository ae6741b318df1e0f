// The Moodtale page: the story as it is written, the reader's mood, what is in use.
// Plain JS, no build step, no CDN. EventSource reconnects by itself; on every
// (re)connection the page reloads the story so nothing is missed.
"use strict";

const LABELS = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"];
const TIMELINE_SECONDS = 300;
const $ = (id) => document.getElementById(id);

const state = {
  storyId: null,
  currentTurn: null,
  currentText: "",
  timeline: [], // {at (epoch s), label, engaged}
  source: null,
};

// Listening: the device announces each sentence of the narration as it starts (an
// `audio` event, to pages that asked with ?listen=1); the page plays them in order on
// one audio element. A phone that falls behind skips to the newest sentence: an
// announced one waits only while the one playing ends, and a newer one replaces it.
const listen = {
  on: false,
  pending: null, // the next clip: {url, seq, until (ms, when it ends on the device)}
  played: [], // sequence numbers played, in order (the tests read it)
  announced: [], // sequence numbers the device announced, in order
};

function setText(id, text) { $(id).textContent = text; }

function buildBars() {
  const list = $("bars");
  for (const label of LABELS) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.textContent = label;
    const bar = document.createElement("span");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.className = "fill";
    fill.id = "fill-" + label;
    fill.style.background = "var(--" + label + ")";
    bar.appendChild(fill);
    const value = document.createElement("span");
    value.className = "value";
    value.id = "value-" + label;
    item.append(name, bar, value);
    list.appendChild(item);
  }
}

function showMood(mood) {
  if (!mood) return;
  setText("mood-label", mood.engaged ? mood.label : "no reader");
  setText("mood-confidence", mood.engaged ? Math.round(mood.confidence * 100) + "%" : "");
  $("mood-label").dataset.label = mood.label;
  let presence;
  if (!mood.engaged) presence = "nobody looking for " + Math.round(mood.away_s) + " s";
  else presence = mood.faces === 1 ? "1 face" : mood.faces + " faces";
  setText("mood-presence", presence);
  for (const label of LABELS) {
    const value = mood.emotions[label] || 0;
    $("fill-" + label).style.width = (value * 100).toFixed(1) + "%";
    setText("value-" + label, Math.round(value * 100) + "%");
  }
  const last = state.timeline[state.timeline.length - 1];
  if (!last || mood.at - last.at >= 1 || last.label !== mood.label || last.engaged !== mood.engaged) {
    state.timeline.push({ at: mood.at, label: mood.label, engaged: mood.engaged });
    trimTimeline();
    drawTimeline();
  }
}

function trimTimeline() {
  const newest = state.timeline.length ? state.timeline[state.timeline.length - 1].at : 0;
  while (state.timeline.length && state.timeline[0].at < newest - TIMELINE_SECONDS) {
    state.timeline.shift();
  }
}

function drawTimeline() {
  const canvas = $("timeline");
  const ctx = canvas.getContext("2d");
  const styles = getComputedStyle(document.documentElement);
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (!state.timeline.length) return;
  const end = state.timeline[state.timeline.length - 1].at;
  const start = end - TIMELINE_SECONDS;
  const x = (at) => ((at - start) / TIMELINE_SECONDS) * canvas.width;
  state.timeline.forEach((point, i) => {
    const next = i + 1 < state.timeline.length ? state.timeline[i + 1].at : end + 1;
    const colour = point.engaged ? point.label : "away";
    ctx.fillStyle = styles.getPropertyValue("--" + colour).trim() || "#999";
    ctx.fillRect(x(point.at), 0, Math.max(1, x(next) - x(point.at)), canvas.height);
  });
}

function showStatus(status) {
  if (!status) return;
  const camera = status.camera || {};
  setText("use-camera", [camera.source, camera.state].filter(Boolean).join(", ") || "–");
  const story = status.story || {};
  setText("use-story", story.backend || "–");
  const speech = status.speech || {};
  setText("use-speech", speech.summary || "–");
  setText("use-state", story.state || "–");
  const problems = status.problems || [];
  const box = $("problems");
  box.replaceChildren(...problems.map((text) => {
    const p = document.createElement("p");
    p.textContent = text;
    return p;
  }));
  box.hidden = problems.length === 0;
  const waiting = $("waiting");
  const idle = story.state && story.state !== "telling";
  waiting.hidden = !idle;
  waiting.textContent = idle ? "The story is " + story.state + "." : "";
}

function turnParagraph(turn) {
  const p = document.createElement("p");
  p.className = turn.ending ? "turn ending" : "turn";
  p.dataset.turn = String(turn.idx);
  p.dataset.mood = turn.mood_label || "";
  p.textContent = turn.text;
  p.style.borderLeftColor = "var(--" + (LABELS.includes(turn.mood_label) ? turn.mood_label : "neutral") + ")";
  return p;
}

async function loadStory() {
  const response = await fetch("/api/story", { cache: "no-store" });
  if (!response.ok) return;
  const story = await response.json();
  state.storyId = story.id;
  setText("premise", story.premise || "");
  $("turns").replaceChildren(...story.turns.map(turnParagraph));
  if (state.currentTurn !== null && story.turns.some((t) => t.idx === state.currentTurn)) {
    state.currentTurn = null;
    state.currentText = "";
  }
  setText("current", state.currentText);
}

function onTurn(data) {
  if (data.phase === "started") {
    state.currentTurn = data.turn;
    state.currentText = "";
    setText("current", "");
  } else if (data.phase === "finished") {
    if (!$("turns").querySelector('[data-turn="' + data.turn + '"]')) {
      $("turns").appendChild(turnParagraph({ idx: data.turn, text: data.text, mood_label: data.mood_label, ending: data.ending }));
    }
    state.currentTurn = null;
    state.currentText = "";
    setText("current", "");
  } else if (data.phase === "new_story") {
    state.currentTurn = null;
    state.currentText = "";
    loadStory();
  }
}

function playClip(clip) {
  const voice = $("voice");
  voice.src = clip.url;
  voice.dataset.seq = String(clip.seq);
  voice.play().then(() => {
    listen.played.push(clip.seq);
    voice.dataset.played = listen.played.slice(-50).join(",");
  }).catch(() => {});
}

function onAudio(data) {
  if (!listen.on) return;
  listen.announced.push(data.seq);
  $("voice").dataset.announced = listen.announced.slice(-50).join(",");
  const clip = { url: data.url, seq: data.seq, until: performance.now() + data.duration_s * 1000 };
  const voice = $("voice");
  if (voice.paused || voice.ended) playClip(clip);
  else listen.pending = clip;
}

function nextClip() {
  const clip = listen.pending;
  listen.pending = null;
  // Over on the device already: skip it, and wait for the next announced sentence.
  if (clip && listen.on && clip.until > performance.now()) playClip(clip);
}

function toggleListen() {
  const button = $("btn-listen");
  const voice = $("voice");
  listen.on = !listen.on;
  button.textContent = listen.on ? "Stop listening" : "Listen";
  button.setAttribute("aria-pressed", String(listen.on));
  if (listen.on) {
    // Browsers play sound only after a tap: play a moment of silence now, in the tap.
    voice.src = "/static/silence.wav";
    voice.play().catch(() => {});
  } else {
    voice.pause();
    listen.pending = null;
  }
  // Ask the device for the narration (or stop it being sent): reconnect.
  if (state.source) state.source.close();
  connect();
}

const UNSAID_FADE_MS = 1600;

// Sentences nobody heard (the reader's mood changed first) leave the story: shown struck
// through and fading for a moment, then gone; a turn nobody heard at all goes whole.
function onUnsaid(data) {
  const p = $("turns").querySelector('[data-turn="' + data.turn + '"]');
  if (!p) return;
  p.replaceChildren(...data.sentences.map((sentence, i) => {
    const span = document.createElement("span");
    span.textContent = (i ? " " : "") + sentence.text;
    if (!sentence.heard) span.className = "unheard";
    return span;
  }));
  // A turn taken back whole is told again under the same number: let it in at once.
  if (!data.text) delete p.dataset.turn;
  setTimeout(() => {
    if (data.text) p.textContent = data.text;
    else p.remove();
  }, UNSAID_FADE_MS);
}

function nearBottom() {
  return window.innerHeight + window.scrollY >= document.body.scrollHeight - 120;
}

function onToken(data) {
  if (state.currentTurn === null) state.currentTurn = data.turn;
  if (data.turn !== state.currentTurn) return;
  // Follow the story as it is written, unless the reader has scrolled back up.
  const follow = nearBottom();
  state.currentText += data.text;
  setText("current", state.currentText);
  if (follow) window.scrollTo(0, document.body.scrollHeight);
}

function connect() {
  const source = new EventSource(listen.on ? "/api/events?listen=1" : "/api/events");
  state.source = source;
  const conn = $("connection");
  source.addEventListener("hello", (event) => {
    const hello = JSON.parse(event.data);
    conn.textContent = "live";
    conn.className = "chip live";
    state.timeline = hello.timeline || [];
    if (hello.current && hello.current.turn !== null) {
      state.currentTurn = hello.current.turn;
      state.currentText = hello.current.text || "";
    }
    showStatus(hello.status);
    showMood(hello.mood);
    drawTimeline();
    loadStory();
  });
  source.addEventListener("mood", (event) => showMood(JSON.parse(event.data)));
  source.addEventListener("token", (event) => onToken(JSON.parse(event.data)));
  source.addEventListener("turn", (event) => onTurn(JSON.parse(event.data)));
  source.addEventListener("unsaid", (event) => onUnsaid(JSON.parse(event.data)));
  source.addEventListener("audio", (event) => onAudio(JSON.parse(event.data)));
  source.addEventListener("status", (event) => showStatus(JSON.parse(event.data)));
  source.onerror = () => {
    conn.textContent = "reconnecting…";
    conn.className = "chip down";
    // The browser reconnects by itself, except after a refusal (429: too many pages
    // are open; the device asks for 10 s): then try again after that.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 10000);
  };
}

async function control(action) {
  const token = $("token").value.trim();
  localStorage.setItem("moodtale-token", token);
  const response = await fetch("/api/story/" + action, {
    method: "POST",
    headers: { Authorization: "Bearer " + token },
  });
  if (response.ok) {
    setText("control-result", action === "new" ? "A new story has begun." : "Done: " + action + ".");
    if (action === "new") loadStory();
  } else if (response.status === 401) {
    setText("control-result", "That token is not right.");
  } else {
    setText("control-result", "The device said no (" + response.status + ").");
  }
}

document.addEventListener("DOMContentLoaded", () => {
  buildBars();
  $("token").value = localStorage.getItem("moodtale-token") || "";
  $("btn-new").addEventListener("click", () => control("new"));
  $("btn-listen").addEventListener("click", toggleListen);
  $("voice").addEventListener("ended", nextClip);
  $("btn-pause").addEventListener("click", () => control("pause"));
  $("btn-resume").addEventListener("click", () => control("resume"));
  connect();
});
