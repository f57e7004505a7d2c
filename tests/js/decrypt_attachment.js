// An independent decryptor of relay247 attachments, written from docs/PROTOCOL.md §15.1
// only, on libsodium.js (libsodium-wrappers). Usage:
//   node decrypt_attachment.js KEY_HEX CT_LEN CIPHERTEXT_FILE PLAINTEXT_OUT
// Prints one JSON line: {"ok": true, "size": N, "sha256": HEX} or {"ok": false, "reason": R}.
"use strict";
const fs = require("fs");
const crypto = require("crypto");
const sodium = require("libsodium-wrappers");

const CHUNK = 65536; // plaintext bytes per chunk (§15.1 item 2)
const HEADER = 24; // secretstream header (item 3)
const ABYTES = 17; // added to every chunk (item 3)

function refuse(reason) {
  process.stdout.write(JSON.stringify({ ok: false, reason }) + "\n");
  process.exit(0);
}

(async () => {
  await sodium.ready;
  const [keyHex, ctLenText, ctPath, outPath] = process.argv.slice(2);
  const key = sodium.from_hex(keyHex);
  const ctLen = Number(ctLenText);
  const fd = fs.openSync(ctPath, "r");
  const out = fs.openSync(outPath, "w");
  const total = fs.fstatSync(fd).size;
  const read = (offset, length) => {
    const buf = Buffer.alloc(length);
    const n = fs.readSync(fd, buf, 0, length, offset);
    return buf.subarray(0, n);
  };
  const header = read(0, HEADER);
  if (header.length < HEADER) refuse("truncated");
  let state;
  try {
    state = sodium.crypto_secretstream_xchacha20poly1305_init_pull(header, key);
  } catch (e) {
    refuse("corrupt");
  }
  const hash = crypto.createHash("sha256");
  let offset = HEADER;
  let size = 0;
  for (;;) {
    // Each chunk at its offset: 65,553 bytes, the last ct_len - offset (§15.1 table).
    const want = Math.min(CHUNK + ABYTES, ctLen - offset);
    if (want < ABYTES) refuse("mismatch");
    const sealed = read(offset, want);
    if (sealed.length < want) refuse("truncated");
    let res;
    try {
      res = sodium.crypto_secretstream_xchacha20poly1305_pull(state, sealed);
    } catch (e) {
      refuse("corrupt");
    }
    if (!res) refuse("corrupt");
    const tag = res.tag;
    if (tag !== sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE &&
        tag !== sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) refuse("corrupt");
    offset += sealed.length;
    if (tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE) {
      if (res.message.length !== CHUNK) refuse("truncated");
      if (offset >= ctLen) refuse("truncated");
    }
    hash.update(res.message);
    fs.writeSync(out, res.message);
    size += res.message.length;
    if (tag === sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL) break;
  }
  if (offset !== ctLen) refuse("mismatch");
  if (total > ctLen) refuse("extended");
  fs.closeSync(out);
  process.stdout.write(JSON.stringify({ ok: true, size, sha256: hash.digest("hex") }) + "\n");
})().catch((e) => {
  process.stderr.write(String(e && e.stack) + "\n");
  process.exit(3);
});
