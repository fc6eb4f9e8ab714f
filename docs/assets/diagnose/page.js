/* The diagnosis page: read the dropped files in the browser, run rtclab's rules on them (diagnose.js), draw the
   report. Nothing leaves the page: FileReader only, no fetch, no upload. */
(function () {
  "use strict";
  const zh = (document.documentElement.lang || "").startsWith("zh");
  const WORDS = zh
    ? { connected: "已连通", notConnected: "未连通", path: "路径", rtt: "往返时延（RTT）", findings: "诊断发现", none: "没有发现问题：本次通话没有任何指标越过阈值",
        verdict: "结论", runbook: "处理手册", threshold: "阈值", source: "出处", inbound: "接收", outbound: "发送", audio: "音频", video: "视频",
        loss: "丢包", jitter: "抖动", bitrate: "码率", concealed: "丢包隐藏", buffer: "抖动缓冲", frozen: "卡顿时长占比",
        good: "良好", fair: "一般", poor: "差", failed: "失败", reading: "正在读取" }
    : { connected: "connected", notConnected: "did not connect", path: "path", rtt: "RTT", findings: "Findings", none: "No findings: nothing in this call crossed a threshold",
        verdict: "Verdict", runbook: "runbook", threshold: "threshold", source: "source", inbound: "received", outbound: "sent", audio: "audio", video: "video",
        loss: "loss", jitter: "jitter", bitrate: "bitrate", concealed: "concealed", buffer: "jitter buffer", frozen: "frozen",
        good: "good", fair: "fair", poor: "poor", failed: "failed", reading: "Reading" };

  function element(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attributes || {})) node.setAttribute(key, value);
    for (const child of children) node.append(child instanceof Node ? child : String(child));
    return node;
  }
  const spread = (s, unit) => (s ? `p50 ${s.p50} / p95 ${s.p95} / max ${s.max} ${unit}` : "-");
  const number = (v, unit) => (v === null || v === undefined ? "-" : `${v}${unit ? " " + unit : ""}`);
  // Runbooks sit beside this page in the site: support/diagnose-in-browser/ -> support/runbooks/<family>/
  // (the offline bundle has no directory URLs: support/diagnose-in-browser.html -> support/runbooks/<family>.html)
  const offline = location.pathname.endsWith(".html") && !location.pathname.endsWith("/index.html");
  const runbookHref = (runbook) =>
    offline ? runbook.replace(/^support\//, "").replace(/\/$/, ".html") : "../" + runbook.replace(/^support\//, "");

  function streamLine(s) {
    const parts = [];
    if (s.loss_pct !== null) parts.push(`${WORDS.loss} ${number(s.loss_pct, "%")}`);
    if (s.jitter_ms) parts.push(`${WORDS.jitter} ${spread(s.jitter_ms, "ms")}`);
    if (s.bitrate_kbps) parts.push(`${WORDS.bitrate} ${spread(s.bitrate_kbps, "kbps")}`);
    if (s.concealed_pct !== null && s.concealed_pct !== undefined) parts.push(`${WORDS.concealed} ${number(s.concealed_pct, "%")}`);
    if (s.jitter_buffer_ms !== null && s.jitter_buffer_ms !== undefined) parts.push(`${WORDS.buffer} ${number(s.jitter_buffer_ms, "ms")}`);
    if (s.freeze_pct !== null && s.freeze_pct !== undefined) parts.push(`${WORDS.frozen} ${number(s.freeze_pct, "%")}`);
    return `${WORDS[s.direction]} ${WORDS[s.kind]} ${s.id}: ${parts.join(", ") || "-"}`;
  }

  function render(report) {
    const section = element("section", { class: "diagnose-report", "data-source": report.source });
    section.append(element("h2", {}, report.source));
    section.append(element("p", {}, `${report.format}${report.user_agent ? ", " + report.user_agent : ""}`));
    for (const c of report.connections) {
      const pair = c.candidate_pair;
      const path = pair ? `${pair.local_type} -> ${pair.remote_type} ${pair.protocol}${pair.relay_protocol ? " (TURN " + pair.relay_protocol + ")" : ""}` : "-";
      const list = element("ul", {});
      list.append(element("li", {}, `${c.connected ? WORDS.connected : WORDS.notConnected + " (" + c.ice_outcome + ")"}, ${WORDS.path} ${path}, ${WORDS.rtt} ${spread(c.rtt_ms, "ms")}`));
      for (const s of c.streams) list.append(element("li", {}, streamLine(s)));
      if (c.mos) list.append(element("li", {}, `MOS ${c.mos.mos.toFixed(2)} (R ${c.mos.r}: Id ${c.mos.id}, Ie-eff ${c.mos.ie_eff})`));
      section.append(element("h3", {}, c.id), list);
    }
    section.append(element("h3", {}, WORDS.findings));
    const findings = element("ul", {});
    for (const f of report.findings) {
      const threshold = Array.isArray(f.threshold) ? f.threshold.join(" | ") : number(f.threshold, f.unit);
      findings.append(element("li", { "data-finding": f.id, "data-severity": f.severity, "data-connection": f.connection, "data-stream": f.stream || "" },
        element("strong", {}, f.severity), ` ${f.title} (${f.stream || f.connection}: ${number(f.value, f.unit)}, ${WORDS.threshold} ${threshold}). ${f.explain} `,
        element("a", { href: f.source.url }, `${WORDS.source}: ${f.source.name} (${f.source.as_of})`), " · ",
        element("a", { href: runbookHref(f.runbook) }, WORDS.runbook)));
    }
    if (!report.findings.length) findings.append(element("li", {}, WORDS.none));
    section.append(findings);
    section.append(element("p", { "data-verdict": report.verdict }, `${WORDS.verdict}${zh ? "：" : ": "}`, element("strong", {}, WORDS[report.verdict])));
    return section;
  }

  function show(output, file, bytes) {
    try {
      const dump = window.rtclabDiagnose.parseDump(bytes, file.name, file.size);
      output.append(render(window.rtclabDiagnose.diagnose(dump, zh ? "zh" : "en")));
    } catch (error) {
      // One line naming the file and what is wrong, as the command line prints it.
      const message = error instanceof window.rtclabDiagnose.DumpError ? error.message : `${file.name}: ${error.message}`;
      output.append(element("p", { class: "diagnose-error", "data-error": file.name }, message));
    }
  }

  function start() {
    const input = document.getElementById("diagnose-files");
    const output = document.getElementById("diagnose-output");
    if (!input || !output) return;
    async function diagnoseFiles(files) {
      output.replaceChildren(element("p", {}, `${WORDS.reading}...`));
      const results = document.createDocumentFragment();
      const holder = element("div", {});
      for (const file of files) {
        // Bytes, not text: the same UTF-8 check as the command line. Read in the page; nothing is sent.
        show(holder, file, new Uint8Array(await file.arrayBuffer()));
      }
      results.append(...holder.childNodes);
      output.replaceChildren(results);
    }
    input.addEventListener("change", () => diagnoseFiles(input.files));
    // A file dropped anywhere on the page is diagnosed; left to itself the browser would open the file in
    // place of the page.
    document.addEventListener("dragover", (event) => {
      if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) event.preventDefault();
    });
    document.addEventListener("drop", (event) => {
      if (!event.dataTransfer || !event.dataTransfer.files.length) return;
      event.preventDefault();
      diagnoseFiles(event.dataTransfer.files);
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
