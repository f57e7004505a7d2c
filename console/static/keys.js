// Security keys (WebAuthn, PROTOCOL.md §14.5) on the login page and the officer's security
// page. The server makes the options and checks every answer; this module only carries
// them between the page and navigator.credentials, turning base64url (RFC 4648 §5) into
// bytes and back. Every message shown is a paragraph of the page, in the page's language.
// Without JavaScript the login page keeps its TOTP form, and the security page says that
// registering a key needs JavaScript.
const root = document.getElementById("keys");

function show(id) {
  for (const p of root.querySelectorAll("p[id^='keys-']")) p.hidden = p.id !== id;
  if (id) document.querySelector("p.done")?.setAttribute("hidden", ""); // an older news
}

function toBytes(text) {
  const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
  const raw = atob(b64 + "===".slice((b64.length + 3) % 4));
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out.buffer;
}

function toText(buffer) {
  const bytes = new Uint8Array(buffer);
  let raw = "";
  for (let i = 0; i < bytes.length; i++) raw += String.fromCharCode(bytes[i]);
  return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list) {
  return (list || []).map((c) => ({ ...c, id: toBytes(c.id) }));
}

// The options as the server wrote them (WebAuthn L3 §5.1.2 JSON forms) -> the API's.
function creationOptions(o) {
  return {
    ...o,
    challenge: toBytes(o.challenge),
    user: { ...o.user, id: toBytes(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  };
}

function requestOptions(o) {
  return { ...o, challenge: toBytes(o.challenge), allowCredentials: descriptors(o.allowCredentials) };
}

function registrationJSON(c) {
  const r = c.response;
  return {
    id: c.id,
    rawId: toText(c.rawId),
    type: c.type,
    response: {
      clientDataJSON: toText(r.clientDataJSON),
      attestationObject: toText(r.attestationObject),
      transports: typeof r.getTransports === "function" ? r.getTransports() : [],
    },
  };
}

function assertionJSON(c) {
  const r = c.response;
  return {
    id: c.id,
    rawId: toText(c.rawId),
    type: c.type,
    response: {
      clientDataJSON: toText(r.clientDataJSON),
      authenticatorData: toText(r.authenticatorData),
      signature: toText(r.signature),
      userHandle: r.userHandle ? toText(r.userHandle) : null,
    },
  };
}

class ServerRefusal extends Error {}

function failed(e) {
  const p = document.getElementById("keys-failed");
  if (!p.dataset.text) p.dataset.text = p.textContent;
  // the server's reason, in the page's language; else the browser's refusal (cancelled,
  // timed out, no key recognised): the page's own message
  p.textContent = e instanceof ServerRefusal && e.message ? e.message : p.dataset.text;
  show("keys-failed");
}

// POST a form-encoded body (with the page's CSRF token) and read the JSON options.
async function options(fields) {
  const response = await fetch(root.dataset.options, {
    method: "POST",
    credentials: "same-origin",
    body: new URLSearchParams(fields),
  });
  if (response.redirected) {
    window.location.assign(response.url); // the session ended: the server says where to go
    throw new ServerRefusal("");
  }
  const data = await response.json();
  if (!response.ok) throw new ServerRefusal(data.error);
  return data;
}

function supported() {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    show("keys-no-webauthn");
    return false;
  }
  if (window.location.origin !== root.dataset.origin) {
    show("keys-wrong-origin"); // a key is bound to the RP ID: 127.0.0.1 is not localhost
    return false;
  }
  return true;
}

function loginPage() {
  const form = document.querySelector("form.login");
  const button = document.getElementById("key-login-button");
  if (!supported()) return;
  document.getElementById("key-login").hidden = false;
  button.addEventListener("click", async () => {
    if (!form.login.reportValidity() || !form.password.reportValidity()) return;
    show("");
    button.disabled = true;
    try {
      const csrf = form.elements.csrf.value;
      const o = await options({ csrf, login: form.login.value });
      const credential = await navigator.credentials.get({ publicKey: requestOptions(o) });
      form.assertion.value = JSON.stringify(assertionJSON(credential));
      form.assertion.disabled = false;
      form.code.disabled = true; // the key replaces the code
      form.action = root.dataset.action;
      form.submit();
    } catch (e) {
      failed(e);
      button.disabled = false;
    }
  });
}

function securityPage() {
  const form = document.getElementById("add-key");
  if (!supported()) return;
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    if (form.credential.value) return; // the answer is in: let the browser post it
    event.preventDefault();
    show("");
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      const csrf = form.elements.csrf.value;
      const o = await options({ csrf, name: form.elements.namedItem("name").value });
      const credential = await navigator.credentials.create({ publicKey: creationOptions(o) });
      form.credential.value = JSON.stringify(registrationJSON(credential));
      form.credential.disabled = false;
      form.submit();
    } catch (e) {
      failed(e);
      button.disabled = false;
    }
  });
}

if (root) {
  document.getElementById("keys-need-js")?.setAttribute("hidden", "");
  if (root.dataset.action) loginPage();
  else securityPage();
}
