/* rtclab diagnose in the browser: the same report as `rtclab diagnose --json`, computed in the page.

   A port of src/rtclab/dumps.py and src/rtclab/diagnose.py; the rules and the E-model numbers come from
   diagnose-data.js, which the build writes from src/rtclab/data/diagnose_rules.yaml and rtclab.quality, so
   both implementations read one rules file. tests/rtclab/test_diagnose_in_node.py (Node) and
   tests/browser/test_diagnose_in_browser.py (Chromium) hold this file to the Python on every captured dump.
   Nothing is sent anywhere: the file is read with FileReader and the report is drawn into the page. */
(function (root) {
  "use strict";

  const MAX_BYTES = 25000000;
  const MAX_VALUES = 200000;
  const MAX_DEPTH = 64;
  const SEVERITIES = ["P1", "P2", "P3", "P4"];
  const LEGACY_ID_TYPES = [
    ["RTCRemoteInboundRtp", "remote-inbound-rtp"], ["RTCRemoteOutboundRTP", "remote-outbound-rtp"],
    ["RTCInboundRTP", "inbound-rtp"], ["RTCOutboundRTP", "outbound-rtp"],
    ["RTCIceCandidatePair", "candidate-pair"], ["RTCIceCandidate", "candidate"],
    ["RTCTransport", "transport"], ["RTCMediaStreamTrack", "track"], ["RTCMediaStream", "stream"],
    ["RTCAudioSource", "media-source"], ["RTCVideoSource", "media-source"], ["RTCCodec", "codec"],
    ["RTCCertificate", "certificate"], ["RTCPeerConnection", "peer-connection"], ["RTCDataChannel", "data-channel"],
  ];
  const STATE_EVENTS = {
    iceconnectionstatechange: "ice", oniceconnectionstatechange: "ice",
    connectionstatechange: "connection", onconnectionstatechange: "connection",
    icegatheringstatechange: "gathering", onicegatheringstatechange: "gathering",
    signalingstatechange: "signaling", onsignalingstatechange: "signaling", dtlsstatechange: "dtls",
  };

  // Maps keyed by what the file says (stats ids, field names) have no prototype, as Python's dicts: an id
  // such as "constructor" or "__proto__" is then an id like any other, not an inherited property.
  const table = () => Object.create(null);
  const own = (object, key) => Object.prototype.hasOwnProperty.call(object, key);

  class DumpError extends Error {
    constructor(source, problem) { super(`${source}: ${problem}`); this.problem = problem; }
  }

  const isNumber = (v) => typeof v === "number" && Number.isFinite(v);
  // Python's round(): the double's exact value rounded, an exact tie to even. toFixed rounds the exact value
  // too, but sends ties up, so a tie (the exact expansion ends in 5 right after the last digit) is redone.
  function round(value, digits = 1) {
    if (value === null || value === undefined) return null;
    const exact = value.toFixed(Math.min(digits + 30, 100));
    const tie = new RegExp(`\\.\\d{${digits}}50*$`).test(exact);
    if (!tie) return Number(value.toFixed(digits));
    const down = Number(exact.slice(0, exact.indexOf(".") + digits + 1 + (digits ? 0 : -1)));
    const step = 10 ** -digits * Math.sign(value || 1);
    const last = Math.round(Math.abs(down) * 10 ** digits) % 2;
    return Number((last === 0 ? down : down + step).toFixed(digits));
  }

  function depth(value) {
    let deepest = 0;
    const todo = [[value, 1]];
    while (todo.length) {
      const [item, level] = todo.pop();
      if (item && typeof item === "object") {
        deepest = Math.max(deepest, level);
        if (deepest > MAX_DEPTH) return deepest;
        for (const child of Object.values(item)) if (child && typeof child === "object") todo.push([child, level + 1]);
      }
    }
    return deepest;
  }

  // Where and why Python's json module rejects ``s`` ({msg, pos} with its messages), or null if it accepts it.
  // JSON.parse says only that it failed, in words that change between V8 versions; rtclab.dumps decides from
  // Python's message and position whether the file was cut short, is several JSON values (rtcstats) or is
  // broken, so the page retraces Python's scanner (the C one json.loads uses) to decide the same way.
  // Iterative, so a deeply nested file cannot overflow the stack.
  const WHITESPACE = /[ \t\n\r]*/y;
  const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?/y;
  const PLAIN = /[^"\\\x00-\x1f]*/y;
  const CONSTANTS = ["null", "true", "false", "NaN", "Infinity", "-Infinity"];
  function pythonJsonError(s) {
    const fail = (msg, pos) => { throw { pythonJson: true, msg, pos }; };
    const skip = (i) => { WHITESPACE.lastIndex = i; WHITESPACE.exec(s); return WHITESPACE.lastIndex; };
    const string = (i) => { // i: just after the opening quote
      const begin = i - 1;
      for (;;) {
        PLAIN.lastIndex = i; PLAIN.exec(s); i = PLAIN.lastIndex;
        if (i >= s.length) fail("Unterminated string starting at", begin);
        if (s[i] === '"') return i + 1;
        if (s[i] !== "\\") fail("Invalid control character at", i);
        i += 1;
        if (i >= s.length) fail("Unterminated string starting at", begin);
        if (s[i] === "u") {
          if (i + 5 >= s.length || !/^[0-9a-fA-F]{4}$/.test(s.slice(i + 1, i + 5))) fail("Invalid \\uXXXX escape", i);
          i += 5;
        } else if ('"\\/bfnrt'.includes(s[i])) i += 1;
        else fail("Invalid \\escape", i - 1);
      }
    };
    const open = []; // the containers the scan is inside: "{" or "["
    let i = skip(0);
    try {
      for (;;) {
        // a value starts at i
        if (i >= s.length) fail("Expecting value", i);
        const c = s[i];
        if (c === '"') i = string(i + 1);
        else if (c === "{" || c === "[") {
          i = skip(i + 1);
          const empty = s[i] === (c === "{" ? "}" : "]");
          if (empty) i += 1;
          else {
            open.push(c);
            if (c === "{") {
              if (s[i] !== '"') fail("Expecting property name enclosed in double quotes", i);
              i = skip(string(i + 1));
              if (s[i] !== ":") fail("Expecting ':' delimiter", i);
              i = skip(i + 1);
            }
            continue;
          }
        } else {
          const constant = CONSTANTS.find((k) => s.startsWith(k, i));
          if (constant) i += constant.length;
          else {
            NUMBER.lastIndex = i;
            if (!NUMBER.exec(s)) fail("Expecting value", i);
            i = NUMBER.lastIndex;
          }
        }
        // a value ended at i: close containers or go on to the next member
        for (;;) {
          if (!open.length) {
            i = skip(i);
            if (i !== s.length) fail("Extra data", i);
            return null;
          }
          const container = open[open.length - 1];
          i = skip(i);
          if (s[i] === (container === "{" ? "}" : "]")) { open.pop(); i += 1; continue; }
          if (s[i] !== ",") fail("Expecting ',' delimiter", i);
          i = skip(i + 1);
          if (container === "{") {
            if (s[i] !== '"') fail("Expecting property name enclosed in double quotes", i);
            i = skip(string(i + 1));
            if (s[i] !== ":") fail("Expecting ':' delimiter", i);
            i = skip(i + 1);
          }
          break;
        }
      }
    } catch (error) {
      if (error && error.pythonJson) return { msg: error.msg, pos: error.pos };
      throw error;
    }
  }

  function parseJson(text, source, wholeFile, line) {
    const where = line ? `line ${line}: ` : "";
    let value;
    try {
      value = JSON.parse(text);
    } catch (error) {
      if (error instanceof RangeError) throw new DumpError(source, `${where}JSON nested too deeply to be a dump`);
      const found = pythonJsonError(text);
      if (found === null) throw new DumpError(source, `${where}not valid JSON (NaN and Infinity are not JSON)`);
      const { msg, pos } = found;
      if (msg === "Extra data") {
        if (wholeFile) return undefined; // several JSON values: an rtcstats dump
      } else if (pos >= text.length - 1 || msg.startsWith("Unterminated")) {
        // As rtclab.dumps: an error at the very end, or an unterminated string, means the text was cut short.
        throw new DumpError(source, `${where}the JSON ends early (truncated file?)`);
      }
      const before = text.slice(0, pos);
      const lineNo = before.split("\n").length, column = pos - before.lastIndexOf("\n");
      const what = msg.endsWith(" at") ? msg.slice(0, -3) : msg; // the position follows
      throw new DumpError(source, `${where}not valid JSON (${what} at line ${lineNo} column ${column})`);
    }
    if (depth(value) > MAX_DEPTH) throw new DumpError(source, `${where}JSON nested more than ${MAX_DEPTH} levels deep; not a dump`);
    return value;
  }

  const ISO_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|[+-]\d{2}:\d{2})?)?$/;
  // strptime's checks: a real calendar day and clock time, else no time.
  function localTime(year, month, day, hour, minute, second) {
    const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(Number);
    const date = new Date(y, mo - 1, d, h, mi, s);
    const real = date.getFullYear() === y && date.getMonth() === mo - 1 && date.getDate() === d && h < 24 && mi < 60 && s < 62;
    return real ? date.getTime() : null;
  }

  function timeMs(value) {
    if (isNumber(value)) return value;
    if (typeof value === "string") {
      const text = value.trim();
      if (text !== "" && Number.isFinite(Number(text))) return Number(text);
      if (ISO_TIME.test(text)) {
        // Python reads a time without an offset as local time; Date.parse does so only when a clock time is given.
        const parsed = Date.parse(/[T ]\d/.test(text) ? text.replace(" ", "T") : `${text}T00:00`);
        if (Number.isFinite(parsed)) return parsed;
      }
      let m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}), (\d{1,2}):(\d{1,2}):(\d{1,2}) ([AP]M)$/i.exec(text); // en-US toLocaleString()
      if (m && Number(m[4]) >= 1 && Number(m[4]) <= 12) return localTime(m[3], m[1], m[2], (Number(m[4]) % 12) + (m[7].toUpperCase() === "PM" ? 12 : 0), m[5], m[6]);
      m = /^(\d{1,2})\/(\d{1,2})\/(\d{4}), (\d{1,2}):(\d{1,2}):(\d{1,2})$/.exec(text); // day first, 24 h
      if (m) return localTime(m[3], m[2], m[1], m[4], m[5], m[6]);
    }
    return null;
  }

  function legacyType(id) {
    const lowered = id.toLowerCase();
    for (const [prefix, type] of LEGACY_ID_TYPES) if (lowered.startsWith(prefix.toLowerCase())) return type;
    return null;
  }

  class Series {
    constructor(id, type) { this.id = id; this.type = type; this.fields = table(); }
    last(name) { const v = this.fields[name]; return v && v.length ? v[v.length - 1][1] : null; }
    numbers(name) { return (this.fields[name] || []).filter(([, v]) => isNumber(v)); }
  }

  function candidateType(series) {
    if (series.type === "candidate") series.type = series.last("isRemote") ? "remote-candidate" : "local-candidate";
  }

  function decoded(value) {
    if (typeof value === "string" && value[0] === "{") {
      try { return JSON.parse(value); } catch (error) { return value; }
    }
    return value;
  }

  function webrtcInternals(whole, source) {
    const pcs = whole.PeerConnections;
    if (!pcs || typeof pcs !== "object" || Array.isArray(pcs)) throw new DumpError(source, "PeerConnections is not an object");
    const connections = [];
    for (const [pcId, record] of Object.entries(pcs)) {
      const where = `PeerConnections['${pcId}']`;
      if (!record || typeof record !== "object" || Array.isArray(record)) throw new DumpError(source, `${where} is not an object`);
      const connection = { id: String(pcId), states: [], stats: table() };
      const log = record.updateLog === undefined ? [] : record.updateLog;
      if (!Array.isArray(log)) throw new DumpError(source, `${where}.updateLog is not a list`);
      for (const event of log) {
        const type = event && typeof event === "object" ? String(event.type || "").toLowerCase() : "";
        if (own(STATE_EVENTS, type)) {
          const time = "time" in event ? event.time : event.timestamp;
          connection.states.push([timeMs(time), STATE_EVENTS[type], String(event.value === undefined ? "" : event.value).replace(/^"+|"+$/g, "")]);
        }
      }
      const stats = record.stats === undefined ? {} : record.stats;
      if (!stats || typeof stats !== "object" || Array.isArray(stats)) throw new DumpError(source, `${where}.stats is not an object`);
      for (const [key, entry] of Object.entries(stats)) {
        let statId, name;
        const bracket = key.indexOf("-[");
        if (bracket >= 0) { statId = key.slice(0, bracket); name = key.slice(bracket + 1); }
        else { const dash = key.lastIndexOf("-"); if (dash < 0) continue; statId = key.slice(0, dash); name = key.slice(dash + 1); }
        if (!entry || typeof entry !== "object" || Array.isArray(entry)) continue;
        const type = entry.statsType || legacyType(statId);
        if (!type) continue;
        let values = entry.values;
        if (typeof values === "string") values = parseJson(values, source, false);
        if (!Array.isArray(values)) throw new DumpError(source, `${where}.stats['${key}'].values is not an array`);
        if (values.length > MAX_VALUES) throw new DumpError(source, `${where}.stats['${key}'] has ${values.length} values, more than ${MAX_VALUES}`);
        const series = connection.stats[statId] || (connection.stats[statId] = new Series(statId, String(type)));
        const start = timeMs(entry.startTime), end = timeMs(entry.endTime);
        const step = start !== null && end !== null && values.length > 1 ? (end - start) / (values.length - 1) : null;
        series.fields[name] = values.map((v, i) => [step !== null ? start + i * step : start, decoded(v)]);
      }
      Object.values(connection.stats).forEach(candidateType);
      connections.push(connection);
    }
    const agent = whole.UserAgent || whole.userAgent;
    return { source, format: "webrtc-internals", user_agent: typeof agent === "string" ? agent : null, connections, report: null };
  }

  function agentIn(value) {
    if (value && typeof value === "object" && !Array.isArray(value)) {
      for (const key of ["userAgent", "user_agent", "navigator.userAgent"]) if (typeof value[key] === "string") return value[key];
      for (const child of Object.values(value)) {
        if (child && typeof child === "object" && !Array.isArray(child)) { const found = agentIn(child); if (found) return found; }
      }
    }
    return null;
  }

  function mergePoll(connection, state, poll, at, source, line) {
    const pollTime = timeMs(poll.timestamp) || at;
    const present = Object.keys(poll).filter((k) => poll[k] && typeof poll[k] === "object" && !Array.isArray(poll[k]));
    for (const gone of Object.keys(state)) if (!present.includes(gone)) delete state[gone];
    for (const statId of present) {
      const report = Object.assign(table(), poll[statId]);
      if (report.timestamp === 0) report.timestamp = pollTime;
      const merged = state[statId] || (state[statId] = table());
      Object.assign(merged, report);
      const type = merged.type || legacyType(statId);
      if (!type) continue;
      const series = connection.stats[statId] || (connection.stats[statId] = new Series(statId, String(type)));
      for (const [name, value] of Object.entries(merged)) {
        const values = series.fields[name] || (series.fields[name] = []);
        if (values.length >= MAX_VALUES) throw new DumpError(source, `line ${line}: ${statId}.${name} has more than ${MAX_VALUES} values`);
        values.push([pollTime, value]);
      }
      candidateType(series);
    }
  }

  function rtcstats(text, source) {
    let userAgent = null, entries = 0;
    const connections = new Map(), current = table();
    const lines = text.split(/\r?\n/);
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i].trim();
      const number = i + 1;
      if (!line) continue;
      const value = parseJson(line, source, false, number);
      if (value && typeof value === "object" && !Array.isArray(value)) { userAgent = userAgent || agentIn(value); continue; }
      if (!Array.isArray(value) || value.length < 3 || typeof value[0] !== "string") {
        throw new DumpError(source, `line ${number}: not an rtcstats entry [method, connection, payload, time]`);
      }
      const [method, pcId] = value;
      let payload = value[2];
      const at = value.length > 3 ? timeMs(value[3]) : null;
      entries += 1;
      if (["identity", "userAgent", "navigator.userAgent"].includes(method)) {
        userAgent = userAgent || (typeof payload === "string" ? payload : agentIn(payload));
        continue;
      }
      if (pcId === null || pcId === undefined) continue;
      const key = String(pcId);
      if (!connections.has(key)) connections.set(key, { id: key, states: [], stats: table() });
      const connection = connections.get(key);
      if (typeof payload === "string" && method === "getstats" && payload[0] === "{") payload = parseJson(payload, source, false, number);
      const lowered = method.toLowerCase();
      if (own(STATE_EVENTS, lowered)) connection.states.push([at, STATE_EVENTS[lowered], String(payload)]);
      else if (method === "getstats" && payload && typeof payload === "object" && !Array.isArray(payload)) {
        mergePoll(connection, current[key] || (current[key] = table()), payload, at, source, number);
      }
    }
    if (!entries) throw new DumpError(source, "no rtcstats entries (lines like [method, connection, payload, time])");
    return { source, format: "rtcstats", user_agent: userAgent, connections: [...connections.values()], report: null };
  }

  function isRtclab(whole) {
    if (whole.format === "rtclab-stats-timeline") return true;
    return ["profile", "probe", "media", "verdict"].every((k) => k in whole);
  }

  function rtclab(whole, source) {
    if (whole.format === "rtclab-stats-timeline") {
      if (!Array.isArray(whole.snapshots)) throw new DumpError(source, "snapshots is not a list");
      const freezes = whole.freezes && typeof whole.freezes === "object" && !Array.isArray(whole.freezes) ? whole.freezes : {};
      return { source, format: "rtclab", user_agent: null, connections: [], report: { timeline: whole.snapshots, label: whole.label, freezes } };
    }
    if (!whole.media || typeof whole.media !== "object") throw new DumpError(source, "media is not an object (an rtclab probe report has media.audio, media.video)");
    return { source, format: "rtclab", user_agent: null, connections: [], report: whole };
  }

  // Where Python's strict UTF-8 decoder stops: the first byte of the first ill-formed sequence, or -1.
  function firstBadByte(bytes) {
    for (let i = 0; i < bytes.length;) {
      const c = bytes[i];
      if (c < 0x80) { i += 1; continue; }
      let more, low = 0x80, high = 0xbf;
      if (c >= 0xc2 && c <= 0xdf) more = 1;
      else if (c >= 0xe0 && c <= 0xef) { more = 2; if (c === 0xe0) low = 0xa0; if (c === 0xed) high = 0x9f; }
      else if (c >= 0xf0 && c <= 0xf4) { more = 3; if (c === 0xf0) low = 0x90; if (c === 0xf4) high = 0x8f; }
      else return i;
      for (let k = 1; k <= more; k++) {
        const next = bytes[i + k];
        if (next === undefined || next < (k === 1 ? low : 0x80) || next > (k === 1 ? high : 0xbf)) return i;
      }
      i += more + 1;
    }
    return -1;
  }

  // The checks rtclab.dumps.parse_dump makes on bytes, then their text.
  function decodeBytes(bytes, source) {
    if (bytes.length > MAX_BYTES) throw new DumpError(source, `${(bytes.length / 1e6).toFixed(1)} MB is larger than the ${MAX_BYTES / 1e6} MB a dump can be`);
    if (bytes.subarray(0, 4096).includes(0)) throw new DumpError(source, "a binary file, not a JSON or rtcstats dump");
    try {
      return new TextDecoder("utf-8", { fatal: true }).decode(bytes); // drops a BOM, as utf-8-sig does
    } catch (error) {
      const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0; // Python counts after it
      throw new DumpError(source, `not UTF-8 text (byte ${firstBadByte(bytes.subarray(bom))}); a dump is JSON`);
    }
  }

  /** Parse a dump from its bytes (a File's, in the page) or its text. Throws DumpError with one line. */
  function parseDump(data, source, size) {
    let text = data;
    if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
      text = decodeBytes(data instanceof ArrayBuffer ? new Uint8Array(data) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength), source);
    } else {
      if ((size || text.length) > MAX_BYTES) throw new DumpError(source, `${((size || text.length) / 1e6).toFixed(1)} MB is larger than the ${MAX_BYTES / 1e6} MB a dump can be`);
      if (text.slice(0, 4096).includes("\u0000")) throw new DumpError(source, "a binary file, not a JSON or rtcstats dump");
      if (text.slice(0, 4096).includes("\uFFFD")) throw new DumpError(source, "not UTF-8 text; a dump is JSON");
    }
    text = text.replace(/^\uFEFF/, "").trim();
    if (!text) throw new DumpError(source, "the file is empty");
    if (!"{[".includes(text[0])) throw new DumpError(source, "not JSON: a dump starts with '{' (webrtc-internals, rtclab) or '[' (rtcstats)");
    const whole = parseJson(text, source, true);
    if (whole && typeof whole === "object" && !Array.isArray(whole)) {
      if ("PeerConnections" in whole) return webrtcInternals(whole, source);
      if (isRtclab(whole)) return rtclab(whole, source);
      const keys = Object.keys(whole).sort().slice(0, 5).join(", ") || "none";
      throw new DumpError(source, `JSON, but not a dump: no 'PeerConnections' (webrtc-internals) and no rtclab report keys (top-level keys: ${keys})`);
    }
    if (whole !== undefined) throw new DumpError(source, "a JSON array, not a dump (rtcstats dumps hold one JSON value per line)");
    return rtcstats(text, source);
  }

  // --- facts ---------------------------------------------------------------------------------------------

  function percentiles(values) {
    const ordered = values.filter(Number.isFinite).sort((a, b) => a - b);
    if (!ordered.length) return null;
    const rank = (fraction) => {
      const position = fraction * (ordered.length - 1);
      const low = Math.floor(position), high = Math.min(low + 1, ordered.length - 1);
      return ordered[low] + (ordered[high] - ordered[low]) * (position - low);
    };
    return { p50: round(rank(0.5), 1), p95: round(rank(0.95), 1), max: round(ordered[ordered.length - 1], 1) };
  }
  const valuesOf = (series, name, scale = 1) => (series ? series.numbers(name).map(([, v]) => v * scale) : []);
  function lastNumber(series, name) { const n = series ? series.numbers(name) : []; return n.length ? n[n.length - 1][1] : null; }
  function ratesKbps(series, name) {
    const points = series.numbers(name).filter(([t]) => t !== null);
    const rates = [];
    for (let i = 1; i < points.length; i++) {
      const [t0, b0] = points[i - 1], [t1, b1] = points[i];
      if (t1 > t0 && b1 >= b0) rates.push(((b1 - b0) * 8) / (t1 - t0));
    }
    return rates;
  }
  const ofType = (c, type) => Object.values(c.stats).filter((s) => s.type === type);
  function kindOf(series) {
    const kind = series.last("kind") || series.last("mediaType");
    if (kind === "audio" || kind === "video") return kind;
    const lowered = series.id.toLowerCase();
    return lowered.includes("audio") ? "audio" : lowered.includes("video") ? "video" : null;
  }

  function selectedPair(c) {
    for (const transport of ofType(c, "transport")) {
      const pair = c.stats[String(transport.last("selectedCandidatePairId") || "")];
      if (pair) return pair;
    }
    const pairs = ofType(c, "candidate-pair");
    let chosen = pairs.filter((p) => p.last("selected") === true);
    if (!chosen.length) chosen = pairs.filter((p) => p.last("state") === "succeeded" && p.last("nominated"));
    if (!chosen.length) return null;
    const bytes = (p) => (lastNumber(p, "bytesReceived") || 0) + (lastNumber(p, "bytesSent") || 0);
    return chosen.reduce((best, p) => (bytes(p) > bytes(best) ? p : best));
  }

  function candidatePair(c, pair) {
    if (!pair) return null;
    const local = c.stats[String(pair.last("localCandidateId") || "")];
    const remote = c.stats[String(pair.last("remoteCandidateId") || "")];
    const localType = local ? local.last("candidateType") : null;
    return {
      local_type: localType,
      remote_type: remote ? remote.last("candidateType") : null,
      protocol: (local ? local.last("protocol") : null) || (remote ? remote.last("protocol") : null),
      relay_protocol: local && localType === "relay" ? local.last("relayProtocol") : null,
    };
  }

  function transportOf(pair) {
    if (!pair || pair.protocol === null) return null;
    if (pair.local_type === "relay") return `relay-${pair.relay_protocol || "udp"}`;
    return pair.protocol === "tcp" ? "tcp" : "udp";
  }

  function iceOutcome(c, pair) {
    const ice = c.states.filter(([, w]) => w === "ice").map(([, , v]) => v);
    const overall = c.states.filter(([, w]) => w === "connection").map(([, , v]) => v);
    if (overall.includes("connected") || ice.some((v) => v === "connected" || v === "completed")) return [true, "connected"];
    if (!c.states.length && pair && (lastNumber(pair, "bytesReceived") || 0) > 0) return [true, "connected"];
    const all = overall.length ? overall : ice.length ? ice : ["new"];
    const last = all[all.length - 1];
    if (ice.includes("failed") || overall.includes("failed")) return [false, "failed"];
    if (last === "new" || last === "") return [false, "never-left-new"];
    return [false, last];
  }

  function streamOf(c, series, direction) {
    const kind = kindOf(series);
    const s = { id: series.id, kind, direction };
    if (direction === "inbound") {
      const track = c.stats[String(series.last("trackId") || "")];
      const playout = (name) => { const v = lastNumber(series, name); return v !== null ? v : lastNumber(track, name); };
      const received = lastNumber(series, "packetsReceived");
      let lost = lastNumber(series, "packetsLost");
      s.packets = received === null ? null : Math.trunc(received);
      lost = lost === null ? null : Math.max(lost, 0);
      s.loss_pct = received !== null && lost !== null && received + lost > 0 ? round((100 * lost) / (received + lost), 2) : null;
      s.jitter_ms = percentiles(valuesOf(series, "jitter", 1000));
      s.bitrate_kbps = percentiles(ratesKbps(series, "bytesReceived"));
      const concealed = playout("concealedSamples"), total = playout("totalSamplesReceived");
      s.concealed_pct = kind === "audio" && concealed !== null && total ? round((100 * concealed) / total, 2) : null;
      const delay = playout("jitterBufferDelay"), emitted = playout("jitterBufferEmittedCount");
      s.jitter_buffer_ms = delay !== null && emitted ? round((1000 * delay) / emitted) : null;
      const freezes = playout("freezeCount"), frozen = playout("totalFreezesDuration");
      s.freeze_count = kind !== "video" || freezes === null ? null : Math.trunc(freezes);
      const times = series.numbers("packetsReceived").map(([t]) => t).filter((t) => t !== null);
      const span = times.length >= 2 ? (times[times.length - 1] - times[0]) / 1000 : null;
      s.freeze_pct = kind === "video" && frozen !== null && span ? round((100 * frozen) / span, 2) : null;
      const dropped = playout("framesDropped");
      s.frames_dropped = kind !== "video" || dropped === null ? null : Math.trunc(dropped);
      return s;
    }
    const sent = lastNumber(series, "packetsSent");
    const remote = ofType(c, "remote-inbound-rtp").find((r) => r.last("localId") === series.id) || null;
    const lost = lastNumber(remote, "packetsLost");
    s.packets = sent === null ? null : Math.trunc(sent);
    s.loss_pct = lost !== null && sent ? round((100 * lost) / sent, 2) : null;
    s.jitter_ms = percentiles(valuesOf(remote, "jitter", 1000));
    s.bitrate_kbps = percentiles(ratesKbps(series, "bytesSent"));
    s.freeze_count = null;
    s.concealed_pct = null;
    const durations = series.last("qualityLimitationDurations");
    if (kind === "video" && durations && typeof durations === "object" && !Array.isArray(durations)) {
      const entries = Object.entries(durations).filter(([, v]) => isNumber(v));
      const total = entries.reduce((a, [, v]) => a + v, 0);
      const share = Object.fromEntries(entries.map(([k, v]) => [k, total ? round((100 * v) / total, 1) : null]));
      s.quality_limitation_pct = { cpu: share.cpu ?? null, bandwidth: share.bandwidth ?? null, other: share.other ?? null };
    } else if (kind === "video" && (series.fields.qualityLimitationReason || []).length) {
      const reasons = series.fields.qualityLimitationReason.map(([, v]) => v);
      const share = (r) => round((100 * reasons.filter((x) => x === r).length) / reasons.length, 1);
      s.quality_limitation_pct = { cpu: share("cpu"), bandwidth: share("bandwidth"), other: share("other") };
    } else {
      s.quality_limitation_pct = null;
    }
    const source = c.stats[String(series.last("mediaSourceId") || "")];
    s.echo_return_loss_enhancement_db = kind === "audio" ? round(lastNumber(source, "echoReturnLossEnhancement")) : null;
    return s;
  }

  // The E-model of rtclab.quality.score_speech, with its numbers from diagnose-data.js.
  function scoreSpeech(networkMs, bufferMs, lossFraction, conceals) {
    const e = data().emodel;
    const d = networkMs + bufferMs;
    const id = 0.024 * d + (d > 177.3 ? 0.11 * (d - 177.3) : 0);
    const bpl = conceals ? e.opus_bpl : e.no_concealment_bpl;
    const ppl = lossFraction * 100;
    const ie = e.opus_ie + ((95 - e.opus_ie) * ppl) / (ppl / 1 + bpl);
    const r = e.r0_minus_is - id - ie;
    const mos = r <= 0 ? 1 : r >= 100 ? 4.5 : Math.max(1, 1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r));
    return {
      mos: round(mos, 2), r: round(r, 1), id: round(id, 1), ie_eff: round(ie, 1), one_way_delay_ms: round(d, 1),
      network_delay_ms: round(networkMs, 1), jitter_buffer_ms: round(bufferMs, 1), loss_pct: round(ppl, 2), conceals,
    };
  }

  function mosOf(rtt, streams) {
    const heard = streams.filter((s) => s.kind === "audio" && s.direction === "inbound" && s.packets);
    if (!rtt || !heard.length) return null;
    const audio = heard.reduce((best, s) => (s.packets > best.packets ? s : best));
    if (audio.jitter_buffer_ms === null || audio.jitter_buffer_ms < 0) return null;
    const conceals = audio.concealed_pct !== null;
    let loss = conceals ? audio.concealed_pct : audio.loss_pct;
    if (loss === null) return null;
    loss = Math.max(loss, 0);
    return Object.assign({ stream: audio.id }, scoreSpeech(rtt.p50 / 2, audio.jitter_buffer_ms, Math.min(loss, 100) / 100, conceals));
  }

  function connectionOf(c, origin) {
    const pair = selectedPair(c);
    const [connected, outcome] = iceOutcome(c, pair);
    const cp = candidatePair(c, pair);
    let rtts = valuesOf(pair, "currentRoundTripTime", 1000);
    if (!rtts.length) rtts = ofType(c, "remote-inbound-rtp").flatMap((r) => valuesOf(r, "roundTripTime", 1000));
    const rtt = percentiles(rtts);
    let streams = ofType(c, "inbound-rtp").map((s) => streamOf(c, s, "inbound"));
    streams = streams.concat(ofType(c, "outbound-rtp").map((s) => streamOf(c, s, "outbound")));
    streams = streams.filter((s) => s.kind !== null);
    const sum = (dir) => streams.filter((s) => s.kind === "audio" && s.direction === dir).reduce((a, s) => a + (s.packets || 0), 0);
    return {
      id: c.id, connected, ice_outcome: outcome,
      states: c.states.map(([t, what, value]) => ({ at_s: t === null || origin === null ? null : round((t - origin) / 1000, 3), what, value })),
      candidate_pair: cp, transport: transportOf(cp), rtt_ms: rtt, streams,
      audio_one_way: connected && sum("outbound") > 0 && sum("inbound") === 0 ? "sent-but-nothing-received" : null,
      mos: mosOf(rtt, streams),
    };
  }

  function originOf(dump) {
    const times = [];
    for (const c of dump.connections) {
      for (const [t] of c.states) if (t !== null) times.push(t);
      for (const s of Object.values(c.stats)) for (const values of Object.values(s.fields)) if (values.length && values[0][0] !== null) times.push(values[0][0]);
    }
    return times.length ? times.reduce((a, b) => Math.min(a, b)) : null; // no spread: a long call has more times than a call may take arguments
  }

  // --- rules ---------------------------------------------------------------------------------------------

  function metric(item, name) {
    if (name === "bandwidth_limited_pct") return (item.quality_limitation_pct || {}).bandwidth ?? null;
    if (name === "cpu_limited_pct") return (item.quality_limitation_pct || {}).cpu ?? null;
    if (name === "rtt_p50_ms") return (item.rtt_ms || {}).p50 ?? null;
    if (name === "jitter_p95_ms") { const j = item.jitter_ms || {}; return j.p95 !== undefined && j.p95 !== null ? j.p95 : j.p50 ?? null; }
    if (name === "mos") return (item.mos || {}).mos ?? null;
    return item[name] === undefined ? null : item[name];
  }

  function levelOf(levels, value) {
    if (value === null) return null;
    for (const level of levels) {
      if ("in" in level && level.in.includes(value)) return level;
      if ("above" in level && isNumber(value) && value > level.above) return level;
      if ("below" in level && isNumber(value) && value < level.below) return level;
    }
    return null;
  }

  function findings(connections, lang) {
    const table = data().rules;
    const found = [];
    for (const rule of table.rules) {
      for (const c of connections) {
        if (rule.id !== "not-connected" && !c.connected) continue;
        const when = rule.when || {};
        const items = rule.scope === "connection" ? [[null, c]]
          : c.streams.filter((s) => Object.entries(when).every(([k, v]) => s[k] === v)).map((s) => [s.id, s]);
        for (const [streamId, item] of items) {
          const value = metric(item, rule.metric);
          const level = levelOf(rule.levels, value);
          if (!level) continue;
          const source = table.sources[level.source];
          found.push({
            id: rule.id, severity: level.severity, connection: c.id, stream: streamId, value,
            threshold: "above" in level ? level.above : "below" in level ? level.below : level.in,
            unit: rule.unit, title: rule.title[lang], explain: rule.explain[lang],
            runbook: `support/runbooks/${rule.family}/`,
            source: { name: source.name, url: source.url, as_of: String(source.as_of) },
          });
        }
      }
    }
    return found.sort((a, b) => SEVERITIES.indexOf(a.severity) - SEVERITIES.indexOf(b.severity));
  }

  function verdictOf(connections, found) {
    if (connections.length && !connections.some((c) => c.connected)) return "failed";
    const severities = new Set(found.map((f) => f.severity));
    if (severities.has("P1") || severities.has("P2")) return "poor";
    return severities.has("P3") ? "fair" : "good";
  }

  function diagnose(dump, lang = "en") {
    if (dump.format === "rtclab") throw new DumpError(dump.source, "rtclab files are read by the command line; this page reads browser dumps");
    const origin = originOf(dump);
    const connections = dump.connections.map((c) => connectionOf(c, origin));
    if (!connections.length) throw new DumpError(dump.source, "the dump holds no peer connection");
    const found = findings(connections, lang);
    return { schema: 1, source: dump.source, format: dump.format, user_agent: dump.user_agent, connections, findings: found, verdict: verdictOf(connections, found) };
  }

  function data() {
    const d = root.RTCLAB_DIAGNOSE_DATA;
    if (!d) throw new Error("diagnose-data.js is not loaded");
    return d;
  }

  const api = { parseDump, diagnose, percentiles, DumpError };
  if (typeof module === "object" && module.exports) module.exports = api;
  root.rtclabDiagnose = api;
})(typeof window !== "undefined" ? window : globalThis);
