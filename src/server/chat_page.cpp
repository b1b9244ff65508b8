// The page is a raw string literal so the binary needs no files beside it.
#include "server/chat_page.h"

namespace flashlm::server {
namespace {

constexpr std::string_view kPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>flashlm chat</title>
<style>
  :root { --bg: #f6f7f9; --fg: #1d2330; --muted: #6b7385; --user: #dbe8ff; --bot: #ffffff; --accent: #2f6fed; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 15px/1.5 system-ui, sans-serif; background: var(--bg); color: var(--fg);
         display: flex; flex-direction: column; height: 100vh; }
  header { padding: 10px 16px; border-bottom: 1px solid #dde1e8; display: flex; gap: 12px; align-items: center;
           flex-wrap: wrap; background: #fff; }
  header h1 { font-size: 17px; margin: 0; }
  header .muted { color: var(--muted); font-size: 13px; }
  header input { font: inherit; font-size: 13px; padding: 3px 6px; }
  #messages { flex: 1; overflow-y: auto; padding: 16px; display: flex; flex-direction: column; gap: 10px; }
  .msg { max-width: 80ch; padding: 8px 12px; border-radius: 10px; white-space: pre-wrap; word-wrap: break-word; }
  .msg.user { align-self: flex-end; background: var(--user); }
  .msg.assistant { align-self: flex-start; background: var(--bot); border: 1px solid #e3e6ec; }
  .msg.error { align-self: center; background: #ffe3e3; color: #8a1c1c; }
  .stats { font-size: 12px; color: var(--muted); align-self: flex-start; margin-top: -6px; }
  form { display: flex; gap: 8px; padding: 12px 16px; border-top: 1px solid #dde1e8; background: #fff; }
  textarea { flex: 1; font: inherit; padding: 8px; resize: vertical; min-height: 44px; max-height: 40vh; }
  button { font: inherit; padding: 0 16px; border: 0; border-radius: 6px; background: var(--accent); color: #fff;
           cursor: pointer; }
  button.secondary { background: #e6e9ef; color: var(--fg); }
  button:disabled { opacity: .5; cursor: default; }
</style>
</head>
<body>
<header>
  <h1>flashlm</h1>
  <span class="muted" id="model">connecting…</span>
  <label class="muted">System <input id="system" size="28" placeholder="optional system prompt"></label>
  <label class="muted">Temperature <input id="temperature" type="number" min="0" max="2" step="0.1" value="0.7"
         style="width:5em"></label>
  <label class="muted">Max tokens <input id="max_tokens" type="number" min="1" step="1" value="512"
         style="width:6em"></label>
  <label class="muted">API key <input id="apikey" type="password" size="12" placeholder="if required"></label>
  <button type="button" class="secondary" id="clear">New chat</button>
</header>
<div id="messages" aria-live="polite"></div>
<form id="form">
  <textarea id="input" placeholder="Send a message (Enter to send, Shift+Enter for a new line)" autofocus></textarea>
  <button type="submit" id="send">Send</button>
  <button type="button" class="secondary" id="stop" disabled>Stop</button>
</form>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];
let controller = null;

$("apikey").value = localStorage.getItem("flashlm_api_key") || "";
$("apikey").addEventListener("change", () => { localStorage.setItem("flashlm_api_key", $("apikey").value); loadModel(); });

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

async function loadModel() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    const j = await r.json();
    $("model").textContent = r.ok ? j.data[0].id : (j.error ? j.error.message : "HTTP " + r.status);
  } catch (e) {
    $("model").textContent = "server unreachable";
  }
}

function addBubble(cls, text) {
  const div = document.createElement("div");
  div.className = "msg " + cls;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

// Reads an SSE body: events are separated by a blank line; each "data:" line holds
// one JSON chunk, and "[DONE]" ends the stream.
async function* sseEvents(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let sep;
    while ((sep = buf.indexOf("\n\n")) >= 0) {
      const event = buf.slice(0, sep);
      buf = buf.slice(sep + 2);
      for (const line of event.split("\n")) {
        if (line.startsWith("data:")) yield line.slice(5).trim();
      }
    }
  }
}

async function send(text) {
  history.push({ role: "user", content: text });
  addBubble("user", text);
  const bubble = addBubble("assistant", "");
  bubble.classList.add("streaming");
  const stats = document.createElement("div");
  stats.className = "stats";
  $("messages").appendChild(stats);
  const messages = [];
  if ($("system").value.trim()) messages.push({ role: "system", content: $("system").value.trim() });
  messages.push(...history);
  controller = new AbortController();
  $("send").disabled = true;
  $("stop").disabled = false;
  const t0 = performance.now();
  let tFirst = 0, chunks = 0, usage = null, finish = "";
  let reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: headers(), signal: controller.signal,
      body: JSON.stringify({ messages, stream: true, stream_options: { include_usage: true },
                             temperature: Number($("temperature").value),
                             max_tokens: Number($("max_tokens").value) || undefined }),
    });
    if (!r.ok) {
      const j = await r.json().catch(() => ({}));
      throw new Error(j.error ? j.error.message : "HTTP " + r.status);
    }
    for await (const data of sseEvents(r.body)) {
      if (data === "[DONE]") break;
      const chunk = JSON.parse(data);
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      for (const c of chunk.choices || []) {
        const piece = (c.delta && c.delta.content) || "";
        if (piece) {
          if (!tFirst) tFirst = performance.now();
          chunks++;
          reply += piece;
          bubble.textContent = reply;
          $("messages").scrollTop = $("messages").scrollHeight;
        }
        if (c.finish_reason) finish = c.finish_reason;
      }
      const secs = (performance.now() - (tFirst || t0)) / 1000;
      if (tFirst && secs > 0) stats.textContent = (chunks / secs).toFixed(1) + " tokens/s";
    }
    const n = usage ? usage.completion_tokens : chunks;
    const genSecs = tFirst ? (performance.now() - tFirst) / 1000 : 0;
    const rate = genSecs > 0 ? Math.max(n - 1, 0) / genSecs : 0;
    stats.textContent = n + " tokens, " + rate.toFixed(1) + " tokens/s, first token after " +
        ((tFirst ? tFirst - t0 : 0) / 1000).toFixed(2) + " s" + (finish ? ", finish: " + finish : "");
  } catch (e) {
    if (e.name === "AbortError") {
      stats.textContent = "stopped";
    } else {
      addBubble("error", String(e.message || e));
    }
  } finally {
    bubble.classList.remove("streaming");
    bubble.classList.add("done");
    history.push({ role: "assistant", content: reply });
    controller = null;
    $("send").disabled = false;
    $("stop").disabled = true;
    $("input").focus();
  }
}

$("form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  send(text);
});
$("input").addEventListener("keydown", (ev) => {
  if (ev.key === "Enter" && !ev.shiftKey) { ev.preventDefault(); $("form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("clear").addEventListener("click", () => {
  if (controller) controller.abort();
  history.length = 0;
  $("messages").textContent = "";
});
loadModel();
</script>
</body>
</html>
)html";

}  // namespace

std::string_view chat_page_html() { return kPage; }

}  // namespace flashlm::server
