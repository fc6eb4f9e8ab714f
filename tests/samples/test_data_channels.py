"""samples/sdk/data_channels.py: under random loss the reliable modes deliver everything, maxRetransmits=0 loses
about the configured share, and ordered delivery (data channel or TCP) has the worst tail; without loss every
mode delivers everything in order; the SDP, size limit and WebSocket checks print; bad arguments exit 2."""

import itertools
import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "data_channels.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=120)
load_sample = partial(sample_runner.load_sample, SAMPLE)
ROW = re.compile(
    r"^(?P<mode>(?:data channel|WebSocket)\S*.*?)\s+(?P<delivered>\d+\.\d) %"
    r"\s+(?P<p50>[\d.]+)\s+(?P<p95>[\d.]+)\s+(?P<p99>[\d.]+)\s+(?P<max>[\d.]+)\s+(?P<ooo>\d+)$",
    re.MULTILINE,
)
ORDERED = "data channel: reliable, ordered (default)"
UNORDERED = "data channel: reliable, unordered"
ONCE = "data channel: unordered, maxRetransmits=0"
WEBSOCKET = "WebSocket over TCP (loss modelled)"


def rows(out: str) -> dict[str, dict[str, float]]:
    """mode -> delivered %, p50, p95, p99, max (ms) and out-of-order count, for every row of the table."""
    return {
        m["mode"]: {key: float(m[key]) for key in ("delivered", "p50", "p95", "p99", "max", "ooo")}
        for m in ROW.finditer(out)
    }


def lifetime_row(table: dict[str, dict[str, float]], lifetime_ms: int) -> dict[str, float]:
    return table[f"data channel: unordered, maxPacketLifeTime={lifetime_ms}"]


def check_structure(table: dict[str, dict[str, float]], delay_ms: float, lifetime_ms: int) -> None:
    """Five rows; ordered transports never reorder; nothing arrives faster than the added delay."""
    assert list(table) == [
        ORDERED,
        UNORDERED,
        ONCE,
        f"data channel: unordered, maxPacketLifeTime={lifetime_ms}",
        WEBSOCKET,
    ]
    for mode in (ORDERED, WEBSOCKET, ONCE):  # ONCE: no resends and no reordering on the link, so in order
        assert table[mode]["ooo"] == 0, mode
    for mode, row in table.items():
        assert 0.9 * delay_ms <= row["p50"] <= row["p95"] <= row["p99"] <= row["max"], mode


def test_under_loss_reliable_modes_deliver_all_and_ordered_ones_pay_in_the_tail():
    delay, loss, lifetime = 50.0, 5.0, 300
    result = run_sample("--seconds", "8", "--delay-ms", f"{delay:g}", "--loss", f"{loss:g}")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout

    # The data channel's SDP, and the size limit it declares, which aiortc enforces on send().
    assert re.search(r"^  m=application \d+ UDP/DTLS/SCTP webrtc-datachannel$", out, re.MULTILINE)
    assert re.search(r"^  a=sctp-port:5000$", out, re.MULTILINE)
    declared = re.search(r"^  a=max-message-size:(\d+)$", out, re.MULTILINE)
    assert declared
    limit = int(declared.group(1))
    assert f"allows messages up to {limit} bytes; one byte more: ValueError: " in out
    assert re.search(r"DATA chunks of at most \d{3,4} bytes", out)
    assert "without the token: refused with HTTP 403" in out
    assert "240 messages per mode, 30 per second" in out

    table = rows(out)
    check_structure(table, delay, lifetime)
    # Reliable means everything arrives, late or not.
    for mode in (ORDERED, UNORDERED, WEBSOCKET):
        assert table[mode]["delivered"] == 100.0, mode
    # Sent once: about the configured share is lost (240 messages: wide margins for chance).
    lost = 100 - table[ONCE]["delivered"]
    assert 0.3 * loss <= lost <= 2.4 * loss
    # A lifetime long enough for one resend recovers most of those losses.
    assert lifetime_row(table, lifetime)["delivered"] >= table[ONCE]["delivered"]
    # Resends cost at least a round trip: the ordered tail is far above the send-once tail ...
    assert table[ORDERED]["p99"] >= table[ONCE]["p99"] + delay
    assert table[ORDERED]["p99"] >= 2.5 * delay  # one way plus at least one round trip
    # ... and unordered reliable delivery lets messages overtake a lost one.
    assert table[UNORDERED]["ooo"] > 0
    # The TCP model resends after its timeout (200 ms here), and holds back what follows.
    assert table[WEBSOCKET]["p99"] >= 0.9 * (delay + 200)
    dropped = re.search(r"dropped by the link: (\d+) of (\d+) \((\d+\.\d) %", out)
    assert dropped and int(dropped.group(1)) > 0
    assert 0.3 * loss <= float(dropped.group(3)) <= 2.4 * loss
    resent = re.search(r"TCP model: (\d+) of 240 WebSocket frames needed a resend \(RTO 200 ms", out)
    assert resent and int(resent.group(1)) > 0


def test_without_loss_every_mode_delivers_everything_in_order():
    delay, lifetime = 30.0, 120
    result = run_sample(
        "--seconds",
        "3",
        "--rate",
        "20",
        "--loss",
        "0",
        "--delay-ms",
        f"{delay:g}",
        "--lifetime-ms",
        str(lifetime),
    )
    assert result.returncode == 0, result.stderr
    table = rows(result.stdout)
    check_structure(table, delay, lifetime)
    for mode, row in table.items():
        assert row["delivered"] == 100.0, mode
        assert row["ooo"] == 0, mode
        assert row["p50"] < delay + 100, mode  # generous: the machine may be busy
    assert "60 messages per mode, 20 per second" in result.stdout
    assert "dropped by the link: 0 of " in result.stdout
    assert "TCP model: 0 of 60 WebSocket frames needed a resend" in result.stdout


def test_tcp_model_resends_after_the_timeout_and_holds_back_what_follows():
    sample = load_sample()
    model = sample.TcpLossModel(sample.Impairment(delay_ms=50, loss=0.5, seed=3), rto_ms=200, seed=3)
    assert [round(model.deliver_at(t), 6) for t in (0.0, 0.01, 0.02)] == [0.05, 0.06, 0.07]  # not lossy yet
    model.lossy = True
    sent = [0.1 + 0.033 * i for i in range(200)]
    deliveries = [model.deliver_at(t) for t in sent]
    assert deliveries == sorted(deliveries)  # in order, always
    waits = [d - s for s, d in zip(sent, deliveries, strict=True)]
    assert min(waits) >= 0.05 - 1e-9
    assert max(waits) >= 0.05 + 0.2  # at least one resend, one timeout late
    assert model.retransmissions > 0
    # A chunk behind a resent one waits even though it was not lost itself.
    held = [w for prev, w in itertools.pairwise(waits) if prev > 0.2 and w > 0.06]
    assert held


def test_tcp_model_gives_up_drawing_losses_after_a_few_resends():
    sample = load_sample()
    model = sample.TcpLossModel(sample.Impairment(delay_ms=10, loss=1.0), rto_ms=200, seed=1)
    model.lossy = True
    wait = model.deliver_at(0.0)
    assert model.retransmissions == sample.MAX_RESENDS
    assert wait == pytest.approx(0.2 * (2**sample.MAX_RESENDS - 1) + 0.01)


def test_tally_counts_reordering_and_refuses_duplicates():
    sample = load_sample()
    tally = sample.Tally()
    for seq in (0, 2, 1, 3, 5, 4):
        tally.received(f'{{"seq": {seq}, "sent": 0}}')
    assert tally.out_of_order == 2
    assert len(tally.latencies_ms) == 6
    with pytest.raises(RuntimeError):
        tally.received('{"seq": 3, "sent": 0}')


def test_percentile_is_nearest_rank_and_rto_has_a_floor():
    sample = load_sample()
    values = [float(v) for v in range(1, 101)]
    assert [sample.percentile(values, q) for q in (0.5, 0.95, 0.99, 1.0)] == [50.0, 95.0, 99.0, 100.0]
    assert sample.tcp_rto_ms(10, 0) == 200
    assert sample.tcp_rto_ms(150, 10) == 340


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--seconds", "--rate", "--delay-ms", "--jitter-ms", "--loss", "--lifetime-ms", "--seed"):
        assert option in result.stdout


@pytest.mark.parametrize(("args", "option"), [(("--loss", "80"), "--loss"), (("--rate", "fast"), "--rate")])
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
        ("--seconds", "0"),
        ("--seconds", "nan"),
        ("--rate", "1000"),
        ("--delay-ms", "-1"),
        ("--jitter-ms", "inf"),
        ("--loss", "-5"),
        ("--lifetime-ms", "0"),
        ("--lifetime-ms", "1.5"),
        ("--seed", "x"),
    ],
)
def test_out_of_range_arguments_exit_2(args, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(list(args))
    assert exit_info.value.code == 2
    assert args[0] in capsys.readouterr().err
