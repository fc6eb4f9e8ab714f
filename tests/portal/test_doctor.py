"""portal.doctor: one list of system packages, checked in well under 3 s, with the one command that fixes what
is missing; a user who cannot install is stopped at once; the README's table is the list's."""

from __future__ import annotations

import subprocess
import sys

import pytest

from portal import doctor
from portal.paths import ROOT


def fake_packages(tmp_path, body: str):
    path = tmp_path / "system-packages.toml"
    path.write_text(body, encoding="utf-8")
    return path


PRESENT_AND_ABSENT = """
[[package]]
name = "sh-package"
found_by = "sh"
for = ["serve", "test"]
needed_by = "everything"
why = "a shell"

[[package]]
name = "lma-not-a-package"
found_by = "lma-no-such-executable"
for = ["test"]
needed_by = "`make test`"
why = "absent on purpose"
"""


def test_the_real_list_loads_and_names_what_the_readme_promises():
    names = [p.name for p in doctor.load_packages()]
    for name in ("chromium", "fonts-noto-cjk", "espeak-ng", "redis-server", "nodejs", "npm", "python3-venv"):
        assert name in names


def test_the_readme_table_is_generated_from_the_list():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert doctor.readme_table(doctor.load_packages()) in readme, (
        "README.md's system-packages table differs from system-packages.toml: replace it with the output of "
        "python3 src/portal/doctor.py --readme-table"
    )


def test_ci_reads_the_same_list():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "src/portal/doctor.py --for test --install" in ci
    assert "apt-get install" not in ci  # no second copy of the list


def test_missing_package_is_reported_with_the_one_command_that_fixes_it(tmp_path, capsys):
    packages = doctor.load_packages(fake_packages(tmp_path, PRESENT_AND_ABSENT))
    checks, missing = doctor.run_checks("test", packages)
    assert [p.name for p in missing] == ["lma-not-a-package"]
    doctor.print_report("test", checks, missing)
    out = capsys.readouterr().out
    assert "MISSING  lma-not-a-package" in out
    assert "ok       sh-package" in out
    assert "apt-get install -y --no-install-recommends lma-not-a-package" in out


def test_for_serve_leaves_out_test_only_packages_and_checks_the_port(tmp_path):
    packages = doctor.load_packages(fake_packages(tmp_path, PRESENT_AND_ABSENT))
    checks, missing = doctor.run_checks("serve", packages)
    assert missing == []
    assert any(c.label == "port 127.0.0.1:8000" for c in checks)
    build_checks, _ = doctor.run_checks("build", packages)
    assert not any(c.label.startswith("port") for c in build_checks)


def test_a_busy_port_is_missing_with_how_to_find_who_holds_it():
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        check = doctor.check_port(holder.getsockname()[1])
    assert not check.ok and "ss -ltnp" in check.fix


def test_a_user_who_cannot_install_is_stopped_at_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(doctor, "PACKAGES_FILE", fake_packages(tmp_path, PRESENT_AND_ABSENT))
    monkeypatch.setattr(doctor, "can_install_without_password", lambda: False)
    monkeypatch.setattr(doctor, "install", lambda names: pytest.fail("must not try to install"))
    code = doctor.main(["--for", "test", "--install", "--quiet"])
    captured = capsys.readouterr()
    assert code == 1
    assert "apt-get install -y --no-install-recommends lma-not-a-package" in captured.out
    assert "cannot install without a password" in captured.err


def test_root_installs_what_is_missing_then_checks_again(tmp_path, monkeypatch):
    monkeypatch.setattr(doctor, "PACKAGES_FILE", fake_packages(tmp_path, PRESENT_AND_ABSENT))
    monkeypatch.setattr(doctor, "can_install_without_password", lambda: True)
    asked = []
    monkeypatch.setattr(doctor, "install", lambda names: asked.append(names) or True)
    assert doctor.main(["--for", "test", "--install", "--quiet"]) == 1  # still absent after the "install"
    assert asked == [["lma-not-a-package"]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('[[package]]\nname = "x"\nfound_by = "x"\nfor = ["test"]\nwhy = "y"\n', "'needed_by'"),
        ('[[package]]\nname = "x"\nfound_by = "x"\nfor = ["deploy"]\nneeded_by = "n"\nwhy = "y"\n', "for:"),
        ("[[package]\n", "system-packages.toml:"),
    ],
)
def test_a_broken_list_is_one_line_naming_the_field(tmp_path, body, field):
    with pytest.raises(doctor.PackagesFileError, match=field):
        doctor.load_packages(fake_packages(tmp_path, body))


def test_make_doctor_runs_before_any_environment_exists():
    # Only the standard library: run it with -S -I (no site-packages, no user paths), as a bare python3 would.
    result = subprocess.run(
        [sys.executable, "-S", "-I", str(ROOT / "src" / "portal" / "doctor.py"), "--for", "build"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert "Python" in result.stdout and "disk" in result.stdout
    assert "Traceback" not in result.stderr
