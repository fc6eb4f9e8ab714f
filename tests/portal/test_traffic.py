"""portal.traffic: which strace lines are packets past loopback (a TCP connect, a datagram with an address, a write
to a connected socket) and which are not (a UDP connect alone, loopback, Unix sockets); and a real traced run of
headless Chromium started through rtclab.chromium sends nothing past 127.0.0.1."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from portal import traffic
from portal.paths import ROOT

TCP_CONNECT = (
    '41 connect(5<TCP:[99]>, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("1.2.3.4")}, 16)'
    " = -1 ENETUNREACH (Network is unreachable)"
)
UDP_CONNECT_ONLY = (
    '41 connect(7<UDP:[9]>, {sa_family=AF_INET, sin_port=htons(53), sin_addr=inet_addr("8.8.8.8")}, 16) = 0'
)
WRITE_CONNECTED_UDP = '41 write(7<UDP:[10.0.0.1:5->8.8.8.8:53]>, ""..., 30) = 30'
DNS_SENDMMSG = (
    "42 sendmmsg(9<UDP:[10.0.0.2:40000->10.255.255.53:53]>, [{msg_hdr={msg_name=NULL, msg_namelen=0, "
    'msg_iov=[{iov_base=""..., iov_len=34}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, msg_len=34}], 2, '
    "MSG_NOSIGNAL) = 2"
)
IPV6_SENDMSG = (
    "41 sendmsg(8<UDPv6:[1]>, {msg_name={sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), "
    'inet_pton(AF_INET6, "2001:4860:4860::8888", &sin6_addr), sin6_scope_id=0}, msg_namelen=28}, 0) = 1'
)
LOOPBACK = [
    '41 sendto(11<UDP:[127.0.0.1:44429]>, ""..., 88, 0, {sa_family=AF_INET, sin_port=htons(50917), '
    'sin_addr=inet_addr("127.0.0.1")}, 16) = 88',
    '41 write(7<TCPv6:[[::1]:5->[::1]:53]>, ""..., 30) = 30',
    "41 connect(3<TCP:[1]>, {sa_family=AF_INET6, sin6_port=htons(80), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "
    '"::ffff:127.0.0.1", &sin6_addr), sin6_scope_id=0}, 28) = 0',
    '41 write(4<UNIX:[123->124]>, ""..., 8) = 8',
    '41 write(1</dev/pts/0>, ""..., 8) = 8',
    '41 sendto(29<UDP:[192.0.2.2:51417]>, ""..., 100, 0, {sa_family=AF_INET, sin_port=htons(44429), '
    'sin_addr=inet_addr("127.0.0.1")}, 16 <unfinished ...>',
    "41 <... sendto resumed>) = 100",
]


def test_packets_past_loopback_are_found_and_named_by_process():
    lines = [
        '40 execve("/usr/bin/python3", ["python3"], 0x7ffc /* 3 vars */) = 0',
        "40 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD) = 41",
        '42 execve("/usr/lib/chromium/chromium", ["chromium"], 0x7ffc /* 3 vars */) = 0',
        TCP_CONNECT,
        UDP_CONNECT_ONLY,
        WRITE_CONNECTED_UDP,
        DNS_SENDMMSG,
        IPV6_SENDMSG,
        *LOOPBACK,
    ]
    found = [str(p) for p in traffic.destinations(lines)]
    assert found == [
        "python3 (pid 41) connect tcp -> 1.2.3.4:443",
        "python3 (pid 41) write udp -> 8.8.8.8:53",
        "chromium (pid 42) sendmmsg udp -> 10.255.255.53:53",
        "python3 (pid 41) sendmsg udpv6 -> 2001:4860:4860::8888:53",
    ]


@pytest.mark.parametrize("line", [UDP_CONNECT_ONLY, *LOOPBACK])
def test_what_sends_nothing_past_loopback_is_not_counted(line):
    assert list(traffic.destinations([line])) == []


def test_the_command_fails_naming_the_destination(tmp_path, monkeypatch, capsys):
    if shutil.which("strace") is None:
        pytest.skip("strace missing: make doctor installs it")
    monkeypatch.setattr(traffic, "TRAFFIC", tmp_path)
    # A datagram to a documentation address (TEST-NET-3): the check must flag it whether or not it can leave.
    script = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ntry:\n    s.sendto(b'x', ('203.0.113.9', 9))\nexcept OSError:\n    pass\n"
    code = traffic.run("probe", [sys.executable, "-c", script])
    assert code == 1
    assert "sendto udp -> 203.0.113.9:9" in capsys.readouterr().err
    assert "203.0.113.9:9" in (tmp_path / "probe.txt").read_text(encoding="utf-8")
    assert not (tmp_path / "probe.strace").exists()


@pytest.mark.skipif(not shutil.which("strace"), reason="strace missing: make doctor installs it")
def test_headless_chromium_through_rtclab_sends_nothing_past_loopback(tmp_path, monkeypatch):
    from rtclab.chromium import ChromiumMissingError, chromium_path

    try:
        chromium_path()
    except ChromiumMissingError as error:
        pytest.fail(str(error), pytrace=False)
    monkeypatch.setattr(traffic, "TRAFFIC", tmp_path)
    # Debian's Chromium looked up three Google hosts within seconds of this page load before the host-resolver rule.
    script = (
        "from playwright.sync_api import sync_playwright\n"
        "from rtclab.chromium import launch\n"
        "with sync_playwright() as pw:\n"
        "    browser = launch(pw.chromium)\n"
        "    page = browser.new_page()\n"
        "    page.set_content('<p>loopback only</p>')\n"
        "    page.wait_for_timeout(3000)\n"
        "    browser.close()\n"
    )
    code = traffic.run("chromium", [sys.executable, "-c", script])
    report = (tmp_path / "chromium.txt").read_text(encoding="utf-8")
    assert code == 0, report
    assert "destinations outside loopback: 0" in report


def test_a_run_strace_could_not_trace_proves_nothing_and_fails(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(traffic, "TRAFFIC", tmp_path)
    monkeypatch.setattr(traffic, "traced", lambda command, raw: ["true"])  # strace wrote no trace at all
    assert traffic.run("untraced", ["true"]) == 2
    assert "strace recorded nothing" in capsys.readouterr().err


def test_make_samples_and_make_browser_run_under_the_traffic_check():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "$(TRAFFIC) --name samples --" in makefile
    assert "$(TRAFFIC) --name browser --" in makefile


def test_strace_command_traces_only_what_can_send():
    command = traffic.traced(["true"], ROOT / "x")
    assert command[:2] == ["strace", "-f"] and "--seccomp-bpf" in command and "-yy" in command
    assert subprocess.list2cmdline(command).endswith(" true")
