// The verify page: loads the audit verifier (WebAssembly) and runs it on
// the files the user chose, in the browser.
"use strict";
(function () {
  const result = document.getElementById("result");
  const go = new Go();
  const ready = WebAssembly.instantiateStreaming(fetch("/console/static/verify.wasm"), go.importObject)
    .then((r) => { go.run(r.instance); });
  const read = (input) => input.files[0].arrayBuffer().then((b) => new Uint8Array(b));
  function show(out) {
    result.replaceChildren();
    const p = document.createElement("p");
    if (out.problems.length === 0) {
      p.className = "ok";
      p.textContent = `Verified: ${out.rows} rows, ${out.certificates} certificates, every one in the log the key signed.`;
      result.append(p);
      return;
    }
    p.className = "error";
    p.textContent = `Verification failed: ${out.problems.length} problem(s).`;
    const ul = document.createElement("ul");
    ul.id = "problems";
    for (const pr of out.problems) {
      const li = document.createElement("li");
      li.textContent = pr.row ? `row ${pr.row}: ${pr.message}` : `${pr.check}: ${pr.message}`;
      ul.append(li);
    }
    result.append(p, ul);
  }
  document.getElementById("verify-form").addEventListener("submit", (e) => {
    e.preventDefault();
    result.textContent = "Verifying…";
    Promise.all([ready, read(document.getElementById("report")), read(document.getElementById("proof"))])
      .then(([, report, proof]) => show(JSON.parse(openpcaVerify(report, proof, document.getElementById("key").value.trim()))))
      .catch((err) => { result.textContent = "The verifier failed: " + err; });
  });
})();
