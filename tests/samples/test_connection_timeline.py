"""samples/sdk/connection_timeline.py: prints the SDP lines that matter and a plausible, ordered setup timeline;
a one-way delay grows the round-trip stages (ICE, DTLS) and leaves the local ones alone; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "connection_timeline.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=90)
load_sample = partial(sample_runner.load_sample, SAMPLE)
ROW = re.compile(r"^(?P<stage>\S.*?)\s+(?P<ends>-?\d+\.\d)\s+(?P<took>-?\d+\.\d)$", re.MULTILINE)


def table(out: str) -> dict[str, tuple[float, float]]:
    """stage -> (ends at ms, took ms), for every row of the printed timeline."""
    return {m["stage"]: (float(m["ends"]), float(m["took"])) for m in ROW.finditer(out)}


def check_timeline(rows: dict[str, tuple[float, float]]) -> None:
    """Every stage is printed, no time is negative, and each stage ends after the ones it waits for."""
    stages = [what for what, _, _ in load_sample().STAGES]
    assert list(rows) == stages
    for stage, (ends, took) in rows.items():
        assert 0 <= took <= ends < 10_000, stage
    ends = {stage: end for stage, (end, _) in rows.items()}
    chain = [
        "caller: createOffer()",
        "caller: setLocalDescription(offer), gathers",
        "callee: apply offer, answer, gather",
        "caller: setRemoteDescription(answer)",
        "caller: ICE checks (checking -> completed)",
        "caller: DTLS handshake (server)",
        "callee: first RTP packet (audio)",
        "callee: first audio frame decoded",
    ]
    assert [ends[s] for s in chain] == sorted(ends[s] for s in chain)
    assert ends["callee: ICE checks (checking -> completed)"] <= ends["callee: DTLS handshake (client)"]
    assert ends["callee: first RTP packet (video)"] <= ends["callee: first video frame decoded"]
    both = ends["both peers connected (connect time)"]
    assert both == max(ends["caller: DTLS handshake (server)"], ends["callee: DTLS handshake (client)"])


def test_prints_the_sdp_lines_that_matter_and_an_ordered_timeline():
    result = run_sample("--runs", "2")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout

    sdp = [line.strip() for line in out.split("SDP answer")[0].splitlines()[1:]]
    assert [line.split()[0] for line in sdp if line.startswith("m=")] == ["m=audio", "m=video"]
    assert any(re.fullmatch(r"a=rtpmap:\d+ opus/48000/2", line) for line in sdp)
    assert any(re.fullmatch(r"a=rtpmap:\d+ VP8/90000", line) for line in sdp)
    assert not any(re.search(r"(?i)H264|G722|PCMU|rtx", line) for line in sdp)
    for prefix in ("a=group:BUNDLE", "a=ice-ufrag:", "a=ice-pwd:", "a=fingerprint:sha-256 "):
        assert any(line.startswith(prefix) for line in sdp), prefix
    candidates = [line for line in sdp if line.startswith("a=candidate:")]
    assert candidates and all(" 127.0.0.1 " in c and c.endswith("typ host") for c in candidates)
    assert {line for line in sdp if line.startswith("a=setup:")} == {"a=setup:actpass"}
    assert re.search(r"^SDP answer \(callee\): a=setup:active$", out, re.MULTILINE)
    assert re.search(r"^DTLS version negotiated: DTLSv1\.[23]$", out, re.MULTILINE)
    assert "median of 2 run(s); every datagram delayed 0 ms each way (round trip +0 ms)" in out

    check_timeline(table(out))


def test_one_way_delay_grows_the_round_trip_stages_only():
    delay = 100.0
    result = run_sample("--runs", "1", "--impair-ms", f"{delay:g}")
    assert result.returncode == 0, result.stderr
    rows = table(result.stdout)
    check_timeline(rows)
    took = {stage: t for stage, (_, t) in rows.items()}
    rtt = 2 * delay

    # Work done on one machine does not wait for the network.
    for stage in (
        "caller: createOffer()",
        "caller: setLocalDescription(offer), gathers",
        "callee: apply offer, answer, gather",
        "caller: setRemoteDescription(answer)",
    ):
        assert took[stage] < delay, stage
    # ICE: one check and its response, a round trip (aioice nominates with the first check).
    for peer in ("caller", "callee"):
        assert took[f"{peer}: ICE checks (checking -> completed)"] >= 0.95 * rtt, peer
    # DTLS: the client (callee) waits two round trips with DTLS 1.2, one with 1.3; the server (caller)
    # is done half a round trip before the client.
    client_rtts = 2 if "DTLSv1.2" in result.stdout else 1
    assert took["callee: DTLS handshake (client)"] >= 0.95 * client_rtts * rtt
    assert took["caller: DTLS handshake (server)"] >= 0.95 * (client_rtts - 0.5) * rtt
    # Media: the first packet needs the one-way trip after the caller is connected.
    assert took["callee: first RTP packet (audio)"] >= 0.95 * delay
    assert "round trip +200 ms" in result.stdout


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--runs", "--impair-ms"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "option"), [(("--runs", "0"), "--runs"), (("--impair-ms", "-5"), "--impair-ms")]
)
def test_bad_argument_is_a_one_line_usage_error(args, option):
    result = run_sample(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert option in errors[0]
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--runs", "51"),
        ("--runs", "1.5"),
        ("--runs", "two"),
        ("--impair-ms", "1001"),
        ("--impair-ms", "nan"),
        ("--impair-ms", "inf"),
        ("--impair-ms", "slow"),
    ],
)
def test_out_of_range_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err


def test_lines_that_matter_keeps_opus_vp8_ice_and_dtls_lines():
    sdp = "\n".join(
        [
            "v=0",
            "a=group:BUNDLE 0",
            "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
            "a=rtpmap:96 opus/48000/2",
            "a=rtpmap:0 PCMU/8000",
            "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
            "a=ice-ufrag:abcd",
            "a=fingerprint:sha-256 AA:BB",
            "a=fingerprint:sha-512 CC:DD",
            "a=setup:actpass",
        ]
    )
    assert load_sample().lines_that_matter(sdp) == [
        "a=group:BUNDLE 0",
        "m=audio 9 UDP/TLS/RTP/SAVPF 96 0",
        "a=rtpmap:96 opus/48000/2",
        "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host",
        "a=ice-ufrag:abcd",
        "a=fingerprint:sha-256 AA:BB",
        "a=setup:actpass",
    ]
