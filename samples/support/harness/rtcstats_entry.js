// The esbuild entry of the call page's rtcstats bundle: @jitsi/rtcstats as a browser would load it in production,
// exposed as window.startRtcstats. capture_dumps.py builds it into a temporary folder for each run:
//   node_modules/.bin/esbuild samples/support/harness/rtcstats_entry.js --bundle --format=iife --outfile=...
import rtcstats from "@jitsi/rtcstats/rtcstats.js";
import traceWs from "@jitsi/rtcstats/trace-ws.js";

window.startRtcstats = function startRtcstats({ endpoint, meetingFqn, pollInterval, identity }) {
  const trace = traceWs({ endpoint, meetingFqn, onCloseCallback: () => {}, useLegacy: false });
  // Wraps RTCPeerConnection and getUserMedia: must run before the page creates its peer connection.
  rtcstats(trace, { pollInterval, useLegacy: false });
  trace.connect(false);
  trace.identity("identity", null, identity);
  return trace;
};
