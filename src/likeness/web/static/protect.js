// The protect page: the picture is hashed here (pdq.js) and only the hash is sent. The file is read by the
// browser and never put in any request.
import { hashFile } from "./pdq.js";

const $ = (id) => document.getElementById(id);
let hashed = null;

function fail(message) {
  $("error").textContent = message;
  $("error").hidden = false;
}

async function chosen() {
  $("error").hidden = true;
  $("send").disabled = true;
  const file = $("picture").files[0];
  if (!file) return;
  try {
    hashed = await hashFile(file);
  } catch (err) {
    hashed = null;
    fail(`This picture could not be read here: ${err.message}`);
    return;
  }
  $("pdq").textContent = hashed.hash;
  $("quality").textContent = String(hashed.quality);
  $("variants").replaceChildren(...hashed.hashes.map((h) => Object.assign(document.createElement("li"), { textContent: h })));
  $("hashed").hidden = false;
  $("send").disabled = false;
}

async function send(event) {
  event.preventDefault();
  if (!hashed) return;
  $("send").disabled = true;
  const form = $("protect");
  const body = { pdq: hashed.hash, quality: hashed.quality, kind: $("kind").value, email: $("email").value };
  const answer = await fetch("/protect", {
    method: "POST",
    headers: { "content-type": "application/json", "x-form-token": form.dataset.formToken },
    body: JSON.stringify(body),
    credentials: "same-origin",
  });
  const found = await answer.json().catch(() => ({}));
  if (!answer.ok) {
    $("send").disabled = false;
    fail(found.detail || `The hash was not accepted (${answer.status}).`);
    return;
  }
  $("case").textContent = found.case;
  $("pin").textContent = found.pin;
  $("done").hidden = false;
  form.hidden = true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("picture").addEventListener("change", chosen);
  $("protect").addEventListener("submit", send);
});
