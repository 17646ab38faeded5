"""Runtime set-up: precision rules, seeding, the CJK font, and the network guard."""

import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

from course_utils.runtime import RuntimeInfo, hub_reachable, install_network_guard, setup


def info(capability):
    return RuntimeInfo(colab=False, device="cpu" if capability is None else "cuda", gpu_name="x",
                       compute_capability=capability, hub_online=False, cjk_font=None, seed=0)


@pytest.mark.parametrize("capability, bf16, dtype", [
    (None, False, None), ((7, 5), False, torch.float16), ((8, 0), True, torch.bfloat16), ((9, 0), True, torch.bfloat16)])
def test_precision_follows_compute_capability(capability, bf16, dtype):
    assert info(capability).bf16 is bf16
    assert info(capability).amp_dtype == dtype


def test_setup_is_silent_seeds_everything_and_finds_a_cjk_font(capsys):
    first = setup(seed=3)
    a = (torch.rand(3), np.random.rand(3))
    setup(seed=3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert capsys.readouterr().out == ""
    assert first.device == "cpu" and first.hub_online is False  # conftest forces offline, no GPU
    assert first.cjk_font is not None
    from matplotlib import font_manager
    assert font_manager.findfont(first.cjk_font, fallback_to_default=False)


def test_offline_mode_never_probes_the_hub(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: pytest.fail("probed the network"))
    assert hub_reachable() is False


GUARD_SCRIPT = """
import socket, sys
from course_utils.runtime import install_network_guard
install_network_guard(sys.argv[1])
server = socket.socket(); server.bind(("127.0.0.1", 0)); server.listen()
socket.create_connection(server.getsockname(), timeout=1).close()   # loopback: allowed
for call in (lambda: socket.create_connection(("192.0.2.1", 80), timeout=1),
             lambda: socket.getaddrinfo("example.com", 443)):
    try:
        call()
        print("NOT BLOCKED")
    except OSError as exc:
        print("blocked:", type(exc).__name__)
"""


def test_network_guard_blocks_and_logs_everything_but_loopback(tmp_path):
    # A separate process, so this test's deliberate attempts stay out of the suite's own guard log.
    log = tmp_path / "net.log"
    out = subprocess.run([sys.executable, "-c", GUARD_SCRIPT, str(log)], capture_output=True, text=True, timeout=60)
    assert out.stdout.split("\n")[:2] == ["blocked: ConnectionRefusedError", "blocked: gaierror"], out.stderr
    lines = log.read_text().splitlines()
    assert len(lines) == 2 and "192.0.2.1" in lines[0] and "example.com" in lines[1]


def test_this_test_process_runs_under_the_guard():
    assert getattr(socket.socket.connect, "_course_guard", False)


def test_a_font_that_fails_to_load_is_skipped_with_one_stderr_line(monkeypatch, tmp_path, capsys):
    # matplotlib 3.10 raises RuntimeError("Can not load face (SFNT font table missing)") on the variable
    # Noto CJK collection; registration must carry on and say so, not stop the notebook's setup cell.
    import types

    import matplotlib
    from matplotlib import font_manager

    from course_utils.runtime import CJK_FONT_NAMES, register_cjk_font

    (tmp_path / "NotoSansCJK-VF.otf.ttc").write_bytes(b"not a font")
    fake_package = types.ModuleType("manimgx_fonts_cjk")
    fake_package.__file__ = str(tmp_path / "__init__.py")
    monkeypatch.setitem(sys.modules, "manimgx_fonts_cjk", fake_package)
    attempts = []

    def failing_addfont(path):
        attempts.append(path)
        raise RuntimeError("Can not load face (SFNT font table missing)")

    monkeypatch.setattr(font_manager.fontManager, "addfont", failing_addfont)
    monkeypatch.setattr(font_manager.fontManager, "ttflist",
                        [f for f in font_manager.fontManager.ttflist if f.name not in CJK_FONT_NAMES])
    with matplotlib.rc_context():
        before = list(matplotlib.rcParams["font.sans-serif"])
        assert register_cjk_font() is None
        assert matplotlib.rcParams["font.sans-serif"] == before  # nothing half-configured
    assert attempts == [str(tmp_path / "NotoSansCJK-VF.otf.ttc")]
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("No CJK font found")
    assert "NotoSansCJK-VF.otf.ttc: RuntimeError: Can not load face" in lines[0]
    assert "matplotlib>=3.11 reads it" in lines[0]  # installed but unreadable: the remedy is not "pip install" it


def test_an_unreadable_font_file_with_the_real_addfont_does_not_raise(monkeypatch, tmp_path, capsys):
    # The same path through matplotlib's own addfont, given bytes no FreeType can read.
    import types

    from course_utils.runtime import register_cjk_font

    (tmp_path / "Broken.ttf").write_bytes(b"\x00" * 64)
    fake_package = types.ModuleType("manimgx_fonts_cjk")
    fake_package.__file__ = str(tmp_path / "__init__.py")
    monkeypatch.setitem(sys.modules, "manimgx_fonts_cjk", fake_package)
    register_cjk_font()  # the CJK font registered earlier in this process may still be found; it must not raise
    assert capsys.readouterr().out == ""
