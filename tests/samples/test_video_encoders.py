"""samples/sdk/video_encoders.py: realtime presets cost less CPU than the defaults, bigger frames cost more,
x264's defaults hold frames back, aiortc clamps the target bitrate; bad arguments exit 2."""

import re
from functools import partial
from pathlib import Path

import pytest
import sample_runner

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples" / "sdk" / "video_encoders.py"
run_sample = partial(sample_runner.run_sample, SAMPLE, timeout=240)
load_sample = partial(sample_runner.load_sample, SAMPLE)
ROW = re.compile(
    r"^(?P<codec>VP8|H\.264)\s+(?P<setting>\S.*?)\s+(?P<w>\d+)x(?P<h>\d+)\s+(?P<target>\d+(?:->\d+)?)\s+"
    r"(?P<cpu>\d+\.\d)\s+(?P<kbps>\d+)\s+(?P<held>\d+)\s+(?P<ssim>-?\d\.\d{3})\s+(?P<psnr>\d+\.\d)$",
    re.MULTILINE,
)


@pytest.fixture(scope="module")
def tables():
    result = run_sample("--frames", "20")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    presets_text, ladder_text = result.stdout.split("ladder, aiortc's encoders")
    presets = {(m["codec"], m["setting"]): m for m in ROW.finditer(presets_text)}
    ladder = {(m["codec"], int(m["w"])): m for m in ROW.finditer(ladder_text)}
    return presets, ladder


def test_every_setting_and_rung_is_printed(tables):
    presets, ladder = tables
    assert list(presets) == [(codec, setting) for codec, setting, _, _ in load_sample().PRESETS]
    assert sorted(ladder) == sorted((c, w) for c in ("VP8", "H.264") for w in (320, 640, 1280))
    for row in [*presets.values(), *ladder.values()]:
        assert 0.5 < float(row["ssim"]) <= 1.0, row[0]
        assert float(row["psnr"]) > 20, row[0]
        assert float(row["kbps"]) > 0, row[0]
        assert float(row["cpu"]) > 0, row[0]


def test_realtime_presets_cost_less_cpu_than_the_defaults(tables):
    presets, _ = tables
    cpu = {key: float(row["cpu"]) for key, row in presets.items()}
    assert cpu[("VP8", "realtime, cpu-used 8")] < 0.7 * cpu[("VP8", "libvpx defaults")]
    assert cpu[("H.264", "ultrafast + zerolatency")] < 0.7 * cpu[("H.264", "libx264 defaults")]


def test_x264_defaults_hold_frames_back_and_realtime_settings_do_not(tables):
    presets, ladder = tables
    assert int(presets[("H.264", "libx264 defaults")]["held"]) >= 10  # look-ahead and B-frames
    assert int(presets[("H.264", "ultrafast + zerolatency")]["held"]) == 0
    for row in ladder.values():
        assert int(row["held"]) == 0  # aiortc's encoders return every frame at once


def test_bigger_frames_cost_more_cpu(tables):
    _, ladder = tables
    for codec in ("VP8", "H.264"):
        assert float(ladder[(codec, 1280)]["cpu"]) > 1.5 * float(ladder[(codec, 320)]["cpu"]), codec


def test_aiortc_clamps_the_target_bitrate(tables):
    _, ladder = tables
    assert ladder[("VP8", 320)]["target"] == "200->250"
    assert ladder[("H.264", 320)]["target"] == "200->500"
    assert ladder[("VP8", 1280)]["target"] == "1700->1500"
    assert ladder[("H.264", 1280)]["target"] == "1700"
    # The encoders land near what they were given (rate control within a factor of two on a short clip).
    for row in ladder.values():
        applied = int(row["target"].split("->")[-1])
        assert 0.4 * applied < float(row["kbps"]) < 2 * applied, row[0]


def test_scene_is_the_same_picture_at_every_size():
    scene = load_sample().scene
    small, large = scene(320, 180, 5), scene(1280, 720, 5)
    assert small.shape == (180, 320, 3) and large.shape == (720, 1280, 3)
    assert abs(float(small.mean()) - float(large.mean())) < 3
    assert (scene(320, 180, 6) != small).any()  # it moves


def test_help_describes_the_options():
    result = run_sample("--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage:")
    assert "--frames" in result.stdout


@pytest.mark.parametrize("value", ["9", "301", "ten", "2.5"])
def test_bad_frame_count_is_a_one_line_usage_error(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_sample().main(["--frames", value])
    assert exit_info.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "--frames" in errors[0]


def test_bad_argument_from_the_command_line_exits_2_without_traceback():
    result = run_sample("--frames", "0")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1
    assert result.stdout == ""
