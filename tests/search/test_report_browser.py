"""The report and optuna-dashboard as a person sees them: headless Chromium on a real study.

Each test loads a page, fails on any console error, uncaught exception or
failed resource load, and saves a screenshot (kept in the test's tmp_path; set
REPORT_SCREENSHOTS=DIR to keep copies for looking at).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from search.readers.report import write_report
from tests.conftest import run_cli
from tests.equipment import missing
from tests.search import sql
from tests.search.browser import Browser, chromium


@pytest.fixture(scope="module")
def real_study(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """A real 20-trial digits study (4 epochs), run through the CLI."""
    if chromium() is None:
        missing("chromium is not installed (apt-get install chromium)")
    db = tmp_path_factory.mktemp("web") / "web.db"
    url = f"sqlite:///{db}"
    done = run_cli("run", "--trials", "20", "--epochs", "4", "--jobs", "2", "--study", "web",
                   "--storage", url, "--dataset", "digits", "--no-progress")
    assert done.returncode == 0, done.stderr
    return db, url


@pytest.fixture
def browser(tmp_path: Path):
    try:
        import tornado.websocket  # noqa: F401  (the DevTools client; installed with dask[distributed])
    except ImportError:
        missing("tornado is not installed (pip install -e '.[test]' brings it with dask[distributed])")
    with Browser(tmp_path / "profile") as b:
        yield b


def _keep(shot: Path) -> None:
    keep = os.environ.get("REPORT_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(keep) / shot.name)


def test_report_in_chromium_loads_cleanly_and_shows_what_sql_counts(real_study: tuple[Path, str],
                                                                    browser: Browser, tmp_path: Path) -> None:
    db, url = real_study
    page = write_report("web", url, tmp_path / "web-report.html")
    shot = tmp_path / "report.png"
    visit = browser.visit(page.as_uri(), screenshot=shot, evaluate={
        "keyed": "Object.fromEntries(Array.from(document.querySelectorAll('[data-key]'))"
                 ".map(e => [e.dataset.key, e.dataset.value ?? e.textContent]))",
        "images": "Array.from(document.images).map(i => [i.alt, i.complete, i.naturalWidth, i.naturalHeight])",
        "sections": "Array.from(document.querySelectorAll('h2')).map(h => h.textContent)",
    })
    _keep(shot)
    assert visit.errors == []
    keyed = visit.values["keyed"]
    for state, n in sql.state_counts(db):
        assert keyed[f"trials.{state}.all"] == str(n), state
    best = sql.best_search_value(db)
    assert float(keyed["best-value"]) == best
    epochs = sql.search_epochs_run(db)
    assert int(keyed["epochs-run"]) == epochs
    images = visit.values["images"]
    assert len(images) >= 8 and all(done and w > 100 and h > 100 for _, done, w, h in images), images
    assert visit.values["sections"][:2] == ["Summary", "The winner"]
    with Image.open(shot) as im:
        assert im.size[0] == 1280 and im.size[1] > 3000       # the whole page, not just the first screen
        assert len(im.getcolors(2**24) or []) > 50            # something was drawn


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_optuna_dashboard_names_our_objective_with_no_console_errors(real_study: tuple[Path, str],
                                                                     browser: Browser, tmp_path: Path) -> None:
    command = shutil.which("optuna-dashboard")
    if command is None:
        missing("optuna-dashboard is not installed (pip install -e '.[test]')")
    db, url = real_study
    study_id = sql.study_id_of(db, "web")
    port = _free_port()
    server = subprocess.Popen([command, url, "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=5) as r:
                    assert r.status == 200
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None and time.monotonic() < deadline, "optuna-dashboard did not start"
                time.sleep(0.2)
        shot = tmp_path / "dashboard.png"
        visit = browser.visit(f"http://127.0.0.1:{port}/dashboard/studies/{study_id}",
                              ready="document.body.innerText.includes('val_loss')", screenshot=shot,
                              evaluate={"text": "document.body.innerText"})
        _keep(shot)
    finally:
        server.kill()
        server.wait()
    assert visit.errors == []
    assert "Objective 0" not in visit.values["text"]
    with Image.open(shot) as im:
        assert im.size[0] == 1280 and len(im.getcolors(2**24) or []) > 20
