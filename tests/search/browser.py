"""Headless Chromium driven over the DevTools protocol: load a page, collect console errors, screenshot.

Why the DevTools protocol rather than ``--dump-dom`` and scanning the log: the
protocol says what level a console message had, reports uncaught exceptions and
failed resource loads (a missing image, a script blocked offline) as events,
and lets a test wait for a single-page app (optuna-dashboard) to render
before reading the DOM. The websocket client is Tornado's (installed with Dask).
Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class PageVisit:
    """What a page did while it loaded."""

    errors: list[str] = field(default_factory=list)   # console errors, exceptions, failed loads
    values: dict[str, Any] = field(default_factory=dict)  # results of the expressions asked for


class Browser:
    """One headless Chromium process with its own profile directory; close() ends it."""

    def __init__(self, profile: Path, timeout: float = 30.0) -> None:
        exe = chromium()
        assert exe is not None, "chromium is not installed"
        profile.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
                                      "--remote-debugging-port=0", "about:blank"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.1)
        port, path = port_file.read_text().splitlines()[:2]
        self.ws_url = f"ws://127.0.0.1:{port}{path}"
        self.timeout = timeout

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def visit(self, url: str, *, ready: str = "true", evaluate: dict[str, str] | None = None,
              screenshot: Path | None = None, width: int = 1280, height: int = 900) -> PageVisit:
        """Load ``url``, wait until the JS expression ``ready`` is true, evaluate ``evaluate``
        (name -> expression), and optionally save a full-page PNG."""
        return asyncio.run(asyncio.wait_for(
            self._visit(url, ready, evaluate or {}, screenshot, width, height), self.timeout * 3))

    async def _visit(self, url: str, ready: str, evaluate: dict[str, str], screenshot: Path | None,
                     width: int, height: int) -> PageVisit:
        from tornado.websocket import websocket_connect

        conn = await asyncio.wait_for(websocket_connect(self.ws_url, max_message_size=256 * 2**20), self.timeout)
        ids = itertools.count(1)
        visit = PageVisit()
        pending: dict[int, asyncio.Future] = {}
        loaded = asyncio.Event()

        async def reader() -> None:
            while (raw := await conn.read_message()) is not None:
                msg = json.loads(raw)
                if "id" in msg and msg["id"] in pending:
                    pending.pop(msg["id"]).set_result(msg)
                    continue
                method, params = msg.get("method"), msg.get("params", {})
                if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                    visit.errors.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                               for a in params.get("args", [])))
                elif method == "Runtime.exceptionThrown":
                    d = params.get("exceptionDetails", {})
                    visit.errors.append("exception: " + str(d.get("exception", {}).get("description", d.get("text"))))
                elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                    e = params["entry"]
                    visit.errors.append(f"log ({e.get('source')}): {e.get('text')} {e.get('url', '')}".strip())
                elif method == "Page.loadEventFired":
                    loaded.set()

        async def call(method: str, session: str | None = None, **params: Any) -> dict:
            i = next(ids)
            pending[i] = asyncio.get_running_loop().create_future()
            msg: dict[str, Any] = {"id": i, "method": method, "params": params}
            if session:
                msg["sessionId"] = session
            await conn.write_message(json.dumps(msg))
            reply = await asyncio.wait_for(pending[i], self.timeout)
            if "error" in reply:
                raise RuntimeError(f"{method}: {reply['error']}")
            return reply.get("result", {})

        task = asyncio.create_task(reader())
        try:
            target = (await call("Target.createTarget", url="about:blank"))["targetId"]
            s = (await call("Target.attachToTarget", targetId=target, flatten=True))["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                await call(f"{domain}.enable", s)
            await call("Emulation.setDeviceMetricsOverride", s, width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            await call("Page.navigate", s, url=url)
            await asyncio.wait_for(loaded.wait(), self.timeout)
            deadline = time.monotonic() + self.timeout
            while not (await call("Runtime.evaluate", s, expression=f"Boolean({ready})",
                                  returnByValue=True))["result"].get("value"):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url}: {ready} still false after {self.timeout} s")
                await asyncio.sleep(0.2)
            for name, expression in evaluate.items():
                result = await call("Runtime.evaluate", s, expression=expression, returnByValue=True)
                visit.values[name] = result["result"].get("value")
            if screenshot is not None:
                metrics = await call("Page.getLayoutMetrics", s)
                full = metrics.get("cssContentSize", metrics.get("contentSize"))
                shot = await call("Page.captureScreenshot", s, format="png", captureBeyondViewport=True,
                                  clip={"x": 0, "y": 0, "width": width, "height": min(full["height"], 16000),
                                        "scale": 1})
                screenshot.write_bytes(base64.b64decode(shot["data"]))
            await asyncio.sleep(0.3)  # late console messages of the last render
            await call("Target.closeTarget", targetId=target)
        finally:
            conn.close()
            task.cancel()
        return visit
