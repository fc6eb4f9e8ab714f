"""samples/sdk/opus_fec.py: aiortc's encoder sends no FEC until told to, and decoding the FEC with libopus
rebuilds most single lost packets and raises PESQ under random loss; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "opus_fec.py"
PAGE = ROOT / "docs" / "sdk" / "audio-and-opus.md"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=120)
load_sample = partial(sample_runner.load_sample, SAMPLE)
LOSS_ROWS = (
    "no FEC: gap left silent",
    "no FEC: decoder conceals (PLC)",
    "FEC sent, receiver ignores it (PLC)",
    "FEC sent and decoded",
)


def cells(out: str, label: str) -> list[str]:
    line = next(line for line in out.splitlines() if line.startswith(label))
    return re.split(r"\s{2,}", line[len(label) :].strip())


@pytest.fixture(scope="module")
def default_run():
    result = run_sample()
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    return result.stdout


def test_aiortc_sends_fec_only_when_its_ffmpeg_options_ask_for_it(default_run):
    shipped = re.search(r"^aiortc OpusEncoder as shipped\s+(\d+) / (\d+)", default_run, re.MULTILINE)
    asked = re.search(r'^same, options fec="1", packet_loss="10"\s+(\d+) / (\d+)', default_run, re.MULTILINE)
    assert shipped and asked
    assert int(shipped[1]) == 0
    assert int(asked[1]) >= 0.4 * int(asked[2])  # speech frames carry FEC; quiet ones may not


def test_fec_decoding_rebuilds_single_losses_and_beats_concealment_under_random_loss(default_run):
    header = re.split(
        r"\s{2,}", next(line for line in default_run.splitlines() if line.startswith("PESQ-WB  "))
    )
    assert header[1:] == ["no loss", "random 10 %", "bursty 10 %"]
    lost = [int(c) for c in cells(default_run, "packets lost")]
    assert lost[0] == 0
    assert 25 <= lost[1] <= 80 and 25 <= lost[2] <= 100  # about 10 % of 500
    pesq = {label: [float(c) for c in cells(default_run, label)] for label in LOSS_ROWS}
    silent, plc, fec_ignored, fec = (pesq[label] for label in LOSS_ROWS)

    assert silent[0] == plc[0] and fec_ignored[0] == fec[0]  # no loss: the receiver makes no difference
    assert fec[0] >= plc[0] - 0.6  # FEC takes bits from the main encoding, but not much quality
    for column in (1, 2):
        assert plc[column] >= silent[column]  # concealment beats silence
        assert fec[column] >= fec_ignored[column] - 0.05  # decoding FEC never hurts
        assert fec[column] < fec[0]  # loss still costs something
    assert fec[1] >= plc[1] + 0.5  # random loss: FEC is a big step up from concealment alone

    rebuilt = re.findall(r"(\d+) of (\d+)", default_run.split("rebuilt by FEC", 1)[1].splitlines()[0])
    (random_rebuilt, random_single), (_bursty_rebuilt, _bursty_single) = (
        (int(a), int(b)) for a, b in rebuilt
    )
    assert random_rebuilt >= 0.5 * random_single


def test_bursts_leave_fec_less_to_rebuild(default_run):
    rebuilt = re.findall(r"(\d+) of (\d+)", default_run.split("rebuilt by FEC", 1)[1].splitlines()[0])
    lost = [int(c) for c in cells(default_run, "packets lost")]
    (random_rebuilt, _), (bursty_rebuilt, _) = ((int(a), int(b)) for a, b in rebuilt)
    # Only the last packet of a burst has a successor that arrived.
    assert bursty_rebuilt / lost[2] < random_rebuilt / lost[1]


def test_bursty_helper_hits_the_requested_mean_loss_and_burst():
    sample = load_sample()
    impairment = sample.bursty(0.1, 3, seed=0)
    assert impairment.burst.mean_loss == pytest.approx(0.1)
    assert impairment.burst.mean_burst_packets == pytest.approx(3)
    arrived = sample.loss_pattern(impairment, 20_000)
    assert arrived.count(False) / len(arrived) == pytest.approx(0.1, abs=0.02)


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    for option in ("--loss", "--burst", "--kbps", "--seconds", "--seed"):
        assert option in result.stdout


@pytest.mark.parametrize(
    "args", [("--loss", "0"), ("--loss", "50"), ("--burst", "nan"), ("--kbps", "fast"), ("--seconds", "100")]
)
def test_bad_argument_is_a_one_line_usage_error(args):
    result = run_sample(*args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert args[0] in errors[0]
    assert result.stdout == ""
