"""Runtime set-up shared by every notebook: where are we, and make runs repeatable.

:func:`setup` is the one call in each notebook's setup cell.  It prints nothing on
stdout when all is well, so stored notebook outputs do not depend on the machine;
problems (no CJK font, say) go to stderr as one line.
"""

from __future__ import annotations

import os
import random
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

HUB_HOST = "huggingface.co"

# Font families that draw Chinese, best first.  The pip package ``manimgx-fonts-cjk``
# (Noto Sans CJK, SIL OFL 1.1) is the fallback that installs everywhere pip works.
CJK_FONT_NAMES = ["Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "WenQuanYi Micro Hei",
                  "WenQuanYi Zen Hei", "SimHei", "Microsoft YaHei", "PingFang SC"]


@dataclass
class RuntimeInfo:
    colab: bool
    device: str  # "cuda" or "cpu"
    gpu_name: str | None
    compute_capability: tuple[int, int] | None
    hub_online: bool
    cjk_font: str | None
    seed: int

    @property
    def bf16(self) -> bool:
        """bf16 runs natively only from compute capability 8.0 (Ampere) on.  A T4 (7.5) reports
        ``torch.cuda.is_bf16_supported() == True`` through emulation, so we do not ask torch."""
        return self.compute_capability is not None and self.compute_capability >= (8, 0)

    @property
    def amp_dtype(self):
        """Mixed-precision dtype for this device: bf16, fp16 (needs a GradScaler) or None (fp32 on CPU)."""
        import torch
        if self.device != "cuda":
            return None
        return torch.bfloat16 if self.bf16 else torch.float16

    def summary(self) -> str:
        where = "Colab" if self.colab else "local"
        gpu = f"{self.gpu_name} (compute capability {self.compute_capability[0]}.{self.compute_capability[1]})" if self.gpu_name else "no GPU"
        precision = {None: "fp32"}.get(self.amp_dtype, str(self.amp_dtype).replace("torch.", ""))
        return (f"runtime: {where}, device={self.device} [{gpu}], mixed precision={precision}, "
                f"hub={'online' if self.hub_online else 'offline'}, CJK font={self.cjk_font or 'none'}, seed={self.seed}")


def in_colab() -> bool:
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def hub_reachable(timeout: float = 2.0) -> bool:
    """True when the Hugging Face hub answers.  Offline mode (HF_HUB_OFFLINE=1) never tries."""
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        return False
    try:
        with socket.create_connection((HUB_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def seed_everything(seed: int = 0) -> None:
    import numpy as np
    import torch
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)  # for subprocesses; this process's hash seed is fixed at start


def set_print_options() -> None:
    import numpy as np
    import torch
    np.set_printoptions(precision=4, suppress=True)
    torch.set_printoptions(precision=4, sci_mode=False)


def register_cjk_font() -> str | None:
    """Make matplotlib draw Chinese.  Returns the family used, or None (and says so on stderr).

    Never raises: a missing plot font must not stop a notebook.  A font file this matplotlib
    cannot read is skipped (matplotlib 3.10 raises ``RuntimeError: Can not load face`` on the
    variable Noto CJK collection that 3.11 reads), and the reason goes into the one stderr line."""
    import matplotlib
    from matplotlib import font_manager

    skipped = []
    try:
        import manimgx_fonts_cjk
        paths = sorted(Path(manimgx_fonts_cjk.__file__).parent.glob("*.tt[cf]"))
    except ImportError:
        paths = []
    for path in paths:
        try:
            font_manager.fontManager.addfont(str(path))
        except Exception as exc:  # noqa: BLE001 - any failure to read a font only costs the glyphs
            skipped.append(f"{path.name}: {type(exc).__name__}: {exc}")
    installed = {f.name for f in font_manager.fontManager.ttflist}
    family = next((name for name in CJK_FONT_NAMES if name in installed), None)
    if family is None:
        if skipped:  # the font is installed, this matplotlib cannot read it
            reason = f" (matplotlib {matplotlib.__version__} could not load {'; '.join(skipped)})"
            remedy = "matplotlib>=3.11 reads it; or `apt-get install fonts-noto-cjk`."
        else:
            reason, remedy = "", "Install one with `pip install manimgx-fonts-cjk` or `apt-get install fonts-noto-cjk`."
        print(f"No CJK font found{reason}: Chinese plot labels will show as boxes. {remedy}", file=sys.stderr)
        return None
    matplotlib.rcParams["font.sans-serif"] = [family] + [
        f for f in matplotlib.rcParams["font.sans-serif"] if f != family]
    matplotlib.rcParams["font.family"] = "sans-serif"
    matplotlib.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212
    # The variable Noto CJK file has one weight; stop matplotlib logging that on every plot.
    import logging
    logging.getLogger("matplotlib.font_manager").setLevel(logging.ERROR)
    return family


def _gpu() -> tuple[str | None, tuple[int, int] | None]:
    import torch
    if not torch.cuda.is_available():
        return None, None
    return torch.cuda.get_device_name(0), torch.cuda.get_device_capability(0)


def _is_ip_literal(host) -> bool:
    import ipaddress
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host))
        return True
    except ValueError:
        return False


def install_network_guard(log_path: str) -> None:
    """Block connections to anything but loopback and record each attempt in ``log_path``.

    The test suite turns this on (through COURSE_NETWORK_GUARD) for itself and for every
    notebook kernel, then checks that the log stayed empty."""
    if getattr(socket.socket.connect, "_course_guard", False):
        return
    original_connect = socket.socket.connect

    def guarded_connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if sock.family == socket.AF_UNIX or str(host) in ("127.0.0.1", "::1", "localhost") or str(host).startswith("127."):
            return original_connect(sock, address)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: blocked connection to {address!r}\n")
        raise ConnectionRefusedError(f"network access blocked by the course test guard: {address!r}")

    original_getaddrinfo = socket.getaddrinfo

    def guarded_getaddrinfo(host, *args, **kwargs):
        # A name lookup is network traffic too (DNS), so only loopback names pass.
        if host in (None, "localhost") or _is_ip_literal(host):  # an IP literal needs no DNS
            return original_getaddrinfo(host, *args, **kwargs)
        with open(log_path, "a", encoding="utf-8") as log:
            log.write(f"pid {os.getpid()}: blocked name lookup of {host!r}\n")
        raise socket.gaierror(f"name lookup blocked by the course test guard: {host!r}")

    guarded_connect._course_guard = True
    socket.socket.connect = guarded_connect
    socket.getaddrinfo = guarded_getaddrinfo


def setup(seed: int = 0) -> RuntimeInfo:
    """Seed, set print options, register a CJK font and describe the runtime.  Silent on stdout."""
    guard_log = os.environ.get("COURSE_NETWORK_GUARD")
    if guard_log:
        install_network_guard(guard_log)
    import logging
    try:
        import jieba
        jieba.setLogLevel(logging.WARNING)
    except ImportError:
        pass
    seed_everything(seed)
    set_print_options()
    font = register_cjk_font()
    gpu_name, capability = _gpu()
    return RuntimeInfo(colab=in_colab(), device="cuda" if gpu_name else "cpu", gpu_name=gpu_name,
                       compute_capability=capability, hub_online=hub_reachable(), cjk_font=font, seed=seed)
