"""The explorer's one page (served at /): sliders, category buttons, the decoded image; plain HTML and JS."""

EXPLORER_PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>JointVAE explorer</title>
<style>
 body { font-family: sans-serif; margin: 1em; display: flex; gap: 2em; flex-wrap: wrap; }
 #controls { min-width: 22em; }
 .unit { display: flex; align-items: center; gap: .5em; margin: .15em 0; }
 .unit label { width: 9em; font-size: 90%; } .unit input { flex: 1; } .unit output { width: 3.5em; text-align: right; }
 .disc button { min-width: 2.2em; margin: 1px; } .disc button.on { background: #333; color: #fff; }
 img.pix { image-rendering: pixelated; background: #eee; }
 #view { flex: 1; min-width: 280px; }
 #image { width: 256px; height: 256px; } #strip { width: 100%; max-width: 720px; height: auto; }
 #status { font-size: 90%; color: #555; } #error { color: #b00; }
</style></head><body>
<div id="controls">
 <h3>Continuous units <small>(by KL)</small></h3><div id="active"></div>
 <details id="inactive-box"><summary>inactive units</summary><div id="inactive"></div></details>
 <div id="discs"></div>
</div>
<div id="view">
 <img id="image" class="pix" alt="decoded image"><div id="status"></div><div id="error"></div>
 <p><button id="random">random</button> <button id="zero">zero</button>
  <label>upload <input id="upload" type="file" accept="image/png,image/jpeg"></label></p>
 <p><a id="download" download="explore.png" href="#">download image</a></p>
 <p>traversal of unit <select id="unit"></select> <button id="traverse">show</button>
  <a id="strip-link" download="traversal.png" href="#">download strip</a></p>
 <img id="strip" class="pix" alt="traversal strip" hidden>
</div>
<script>
let info, z = [], busy = false, pending = false, imageUrl = null;
const $ = id => document.getElementById(id);
function fail(message) { $("error").textContent = message; }
async function check(r) { if (!r.ok) throw new Error((await r.text()).trim()); return r; }
function query() { return "z=" + z.map(v => +v.toFixed(4)).join(","); }
async function redraw() {
  if (busy) { pending = true; return; }
  busy = true;
  const t0 = performance.now();
  try {
    const blob = await (await check(await fetch("/decode?" + query()))).blob();
    if (imageUrl) URL.revokeObjectURL(imageUrl);
    imageUrl = URL.createObjectURL(blob);
    $("image").src = imageUrl; $("download").href = imageUrl;
    $("status").textContent = "decoded in " + (performance.now() - t0).toFixed(0) + " ms"; fail("");
  } catch (e) { fail(e.message); }
  busy = false;
  if (pending) { pending = false; redraw(); }
}
function setCode(code) {
  z = code.slice();
  for (const u of info.units) { const s = $("u" + u.unit); s.value = z[u.unit]; s.nextSibling.value = (+z[u.unit]).toFixed(2); }
  let start = info.latent_spec.cont;
  info.latent_spec.disc.forEach((k, i) => {
    for (let c = 0; c < k; c++) $("d" + i + "_" + c).classList.toggle("on", z[start + c] == 1);
    start += k;
  });
  redraw();
}
function build() {
  for (const u of info.units) {
    const row = document.createElement("div"); row.className = "unit";
    const score = "kl" in u ? "KL " + u.kl.toFixed(2) : "effect " + u.effect.toFixed(3);
    row.innerHTML = `<label>unit ${u.unit} <small>${score}</small></label>` +
      `<input type="range" id="u${u.unit}" min="-3" max="3" step="0.01" value="0"><output>0.00</output>`;
    $(u.active ? "active" : "inactive").appendChild(row);
    const s = row.querySelector("input");
    s.oninput = () => { z[u.unit] = +s.value; s.nextSibling.value = (+s.value).toFixed(2); redraw(); };
    const o = document.createElement("option"); o.value = u.unit; o.textContent = u.unit; $("unit").appendChild(o);
  }
  if (!info.units.some(u => !u.active)) $("inactive-box").hidden = true;
  if (!info.units.length) { $("traverse").disabled = true; $("active").textContent = "(none)"; }
  let start = info.latent_spec.cont;
  info.latent_spec.disc.forEach((k, i) => {
    const row = document.createElement("div"); row.className = "disc";
    row.innerHTML = `<h3>Discrete latent ${i}</h3>`;
    const first = start;
    for (let c = 0; c < k; c++) {
      const b = document.createElement("button"); b.id = "d" + i + "_" + c; b.textContent = c;
      b.onclick = () => { const code = z.slice(); for (let j = 0; j < k; j++) code[first + j] = j == c ? 1 : 0; setCode(code); };
      row.appendChild(b);
    }
    $("discs").appendChild(row); start += k;
  });
}
function zero() {
  const code = new Array(info.latent_dim).fill(0); let start = info.latent_spec.cont;
  for (const k of info.latent_spec.disc) { code[start] = 1; start += k; }
  setCode(code);
}
$("random").onclick = async () => {
  try { setCode((await (await check(await fetch("/random"))).json()).z); } catch (e) { fail(e.message); }
};
$("zero").onclick = zero;
$("upload").onchange = async () => {
  const file = $("upload").files[0]; if (!file) return;
  if (file.size > info.max_upload) { fail("file too large (at most " + info.max_upload + " bytes)"); return; }
  try { setCode((await (await check(await fetch("/encode", { method: "POST", body: file }))).json()).z); }
  catch (e) { fail(e.message); }
};
$("traverse").onclick = async () => {
  try {
    const blob = await (await check(await fetch("/traversal?" + query() + "&unit=" + $("unit").value))).blob();
    const url = URL.createObjectURL(blob); $("strip").src = url; $("strip").hidden = false; $("strip-link").href = url;
  } catch (e) { fail(e.message); }
};
fetch("/info").then(check).then(r => r.json()).then(i => { info = i; build(); zero(); }).catch(e => fail(e.message));
</script></body></html>
"""
