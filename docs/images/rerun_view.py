"""Draw docs/images/rerun_view.png: Rerun's web viewer on the recording of one quickstart-like episode.

Run from the repository root: ``python docs/images/rerun_view.py``. It needs the ``viz`` extra, Chromium
(Debian: ``apt-get install chromium``) and the ``websockets`` package (to ask Chromium for the screenshot
over the DevTools protocol once the viewer has loaded: ``--screenshot`` alone fires before the viewer's
WebAssembly has started). Everything stays on this machine: a 2-episode build (64 px, oracle and
siglip-tiny-random, the shipped PPO expert), ``vlnav-data view`` of episode 0, ``rerun REC --serve-web``
on local ports, headless Chromium rendering WebGL in software (SwiftShader).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

OUT = Path(__file__).resolve().parent / "rerun_view.png"
SIZE = (1600, 900)
SETTLE_S = 45.0  # the viewer downloads and compiles its WebAssembly, then streams the recording
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--use-angle=swiftshader",  # WebGL in software
    "--enable-unsafe-swiftshader",
    f"--window-size={SIZE[0]},{SIZE[1]}",
]


def free_port() -> int:
    """A TCP port nothing listens on now (the servers are local to this run)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen | None) -> None:
    """End a process this script started, with its children (its own process group)."""
    import signal

    if proc is not None and proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def run(*args: str, cwd: Path) -> None:
    subprocess.run([*args], cwd=cwd, check=True)


def devtools_screenshot(port: int, settle_s: float) -> bytes:
    """Wait ``settle_s`` seconds, then capture the page through the DevTools protocol."""
    from websockets.sync.client import connect

    time.sleep(settle_s)
    pages = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10).read())
    page = next(p for p in pages if p.get("type") == "page")
    with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
        ws.send(json.dumps({"id": 1, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
        while True:
            reply = json.loads(ws.recv())
            if reply.get("id") == 1:
                return base64.b64decode(reply["result"]["data"])


def main() -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("error: Chromium not found; install it (Debian: apt-get install chromium)")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        build = "build --out demos.h5 --num-episodes 2 --encoder oracle --encoder siglip-tiny-random --image-size-px 64"
        run(str(bin_dir / "vlnav-data"), *build.split(), "--num-envs", "2", "--device", "cpu", cwd=work)
        run(str(bin_dir / "vlnav-data"), "view", "demos.h5", "--episode", "0", "--out", "demos.rrd", cwd=work)
        web_port, grpc_port = free_port(), free_port()
        server = subprocess.Popen(
            [str(bin_dir / "rerun"), "demos.rrd", "--serve-web", "--web-viewer-port", str(web_port), "--port",
             str(grpc_port), "--hide-welcome-screen"],
            cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        profile = work / "chromium-profile"
        browser = None
        try:
            time.sleep(5)
            if server.poll() is not None:
                sys.exit(f"error: `rerun --serve-web` exited with {server.returncode}")
            proxy = f"rerun%2Bhttp%3A%2F%2F127.0.0.1%3A{grpc_port}%2Fproxy"
            url = f"http://127.0.0.1:{web_port}/?url={proxy}&renderer=webgl"
            browser = subprocess.Popen(
                [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", url],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
            )  # fmt: skip
            port_file = profile / "DevToolsActivePort"
            for _ in range(100):
                if port_file.exists() and port_file.read_text().strip():
                    break
                time.sleep(0.2)
            port = int(port_file.read_text().split()[0])
            OUT.write_bytes(devtools_screenshot(port, SETTLE_S))
        finally:
            stop(browser)
            stop(server)
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
