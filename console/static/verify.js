// The verify page: loads the audit verifier (WebAssembly) and runs it on
// the files the user chose, in the browser.
"use strict";
(function () {
  const result = document.getElementById("result");
  const go = new Go();
  const ready = WebAssembly.instantiateStreaming(fetch("/console/static/verify.wasm"), go.importObject)
    .then((r) => { go.run(r.instance); });
  const read = (input) => input.files[0].arrayBuffer().then((b) => new Uint8Array(b));
  const line = (className, text) => {
    const p = document.createElement("p");
    p.className = className;
    p.textContent = text;
    return p;
  };
  function show(out) {
    result.replaceChildren();
    for (const note of out.notes || []) {
      result.append(line("warning note", "Note: " + note));
    }
    if (out.problems.length === 0) {
      result.append(line("ok", `Verified: ${out.rows} rows, ${out.certificates} certificates, every one in the log the key signed.`));
      result.append(line("ok", `It is of the CA ${out.ca}: the first ${out.size || 0} entries of its key-use log, checkpoint signed ${out.signed}.`));
      if (out.report) {
        result.append(line("ok", `It is report ${out.report}.`));
      }
      if (out.witnessed) {
        const when = Object.entries(out.witnessed.cosigned).map(([name, at]) => `${name} at ${at}`).sort().join(", ");
        result.append(line("ok", `Witnessed: ${out.witnessed.size} entries of the log, cosigned by ${when}.`));
      } else if (out.unchecked) {
        result.append(line("warning", "Witnesses not checked: give their keys to check that the server showed them, and everyone, this log."));
      } else {
        result.append(line("warning", "Not witnessed" + (out.notWitnessed ? ` (the server says: ${out.notWitnessed})` : "") +
          ": nothing shows that the server showed everyone this log."));
      }
      return;
    }
    const ul = document.createElement("ul");
    ul.id = "problems";
    for (const pr of out.problems) {
      const li = document.createElement("li");
      li.textContent = pr.row ? `row ${pr.row}: ${pr.message}` : `${pr.check}: ${pr.message}`;
      ul.append(li);
    }
    result.append(line("error", `Verification failed: ${out.problems.length} problem(s).`), ul);
  }
  document.getElementById("verify-form").addEventListener("submit", (e) => {
    e.preventDefault();
    result.textContent = "Verifying…";
    const value = (id) => document.getElementById(id).value.trim();
    const report = document.getElementById("report");
    Promise.all([ready, read(report), read(document.getElementById("proof"))])
      .then(([, r, proof]) => show(JSON.parse(openpcaVerify(r, proof, value("key"), report.files[0].name,
        value("witnesses"), Number(value("quorum")) || 0, value("after")))))
      .catch((err) => { result.textContent = "The verifier failed: " + err; });
  });
})();
