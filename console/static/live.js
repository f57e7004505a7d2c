// Live updates of the inbox and the case page (issue 13 §3): server-sent events from
// /events carry ids and coded values only; the page is then fetched again through the
// console's ordinary handlers and its live parts swapped in. Without JavaScript the
// pages work as they are (reload to see news).
const root = document.getElementById("live");
const REQUESTS = new Set([
  "preservation_request",
  "emergency_disclosure_request",
  "assistance_request",
  "onward_transfer_request",
]);

function pad(n) {
  return String(n).padStart(2, "0");
}

// "2 d 03:04:05 left" (or "overdue") for every countdown of the page, every second, with
// the day unit and the words in the page's language (data-days, data-left, data-overdue).
function tick() {
  if (!root) return;
  const now = Date.now();
  for (const el of document.querySelectorAll(".countdown[data-due]")) {
    const due = Date.parse(el.dataset.due);
    if (Number.isNaN(due)) continue;
    let s = Math.floor((due - now) / 1000);
    if (s <= 0) {
      el.textContent = root.dataset.overdue || "overdue";
      el.classList.add("overdue");
      continue;
    }
    const d = Math.floor(s / 86400);
    s -= d * 86400;
    const text = `${pad(Math.floor(s / 3600))}:${pad(Math.floor((s % 3600) / 60))}:${pad(s % 60)}`;
    const days = d > 0 ? `${d} ${root.dataset.days || "d"} ` : "";
    el.textContent = `${days}${text} ${root.dataset.left || ""}`.trim();
  }
}

// The cases on the page when it was loaded: a row for any other case is new ("fresh").
const known = new Set([...document.querySelectorAll("tr[data-case]")].map((r) => r.dataset.case));

async function refresh(parts) {
  const response = await fetch(window.location.href, {
    credentials: "same-origin",
    headers: { Accept: "text/html" },
  });
  if (response.redirected || !response.ok) {
    window.location.reload(); // the session ended: the server says where to go
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), "text/html");
  for (const id of parts) {
    const mine = document.getElementById(id);
    const theirs = page.getElementById(id);
    if (!mine || !theirs) continue;
    if (id === "live-actions" && mine.contains(document.activeElement)) continue;
    mine.replaceChildren(...theirs.childNodes);
    for (const row of mine.querySelectorAll("tr[data-case]")) {
      if (!known.has(row.dataset.case)) row.classList.add("fresh");
    }
  }
  tick();
}

function alertOfficer(data) {
  const sound = new Audio("/static/alert.wav");
  sound.play().catch(() => {}); // a browser may refuse sound before any click
  if ("Notification" in window && Notification.permission === "granted") {
    const title = root.dataset.new || "New request";
    new Notification(title, { body: `${data.priority} · ${data.case_id.slice(0, 12)}` });
  }
}

function offerNotifications() {
  const button = document.getElementById("notify");
  if (!button || !("Notification" in window) || Notification.permission !== "default") return;
  button.hidden = false;
  button.addEventListener("click", async () => {
    await Notification.requestPermission();
    button.hidden = true;
  });
}

if (root) {
  const onInbox = root.dataset.live === "inbox";
  const parts = onInbox ? ["live-view"] : ["live-view", "live-actions"];
  const stream = new EventSource("/events");
  stream.addEventListener("case", (e) => {
    const data = JSON.parse(e.data);
    if (!onInbox && data.case_id !== root.dataset.case) return;
    if (onInbox && data.direction === "in" && REQUESTS.has(data.kind)) alertOfficer(data);
    refresh(parts).then(() => {
      root.dataset.seen = data.msg_id;
    });
  });
  stream.addEventListener("ended", () => {
    stream.close();
    window.location.reload();
  });
  stream.addEventListener("open", () => {
    root.dataset.stream = "open";
  });
  offerNotifications();
  tick();
  setInterval(tick, 1000);
}
