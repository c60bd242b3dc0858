"""The command that reproduces a study, derived from its stored spec and the settings' one table.

Why derive it from ``search/settings.py``: a setting that gains a ``run`` flag
(``--cv``, ``--finalists``...) shows up here without a second list of names to
keep in step. Settings with no flag (a custom space, the validation fraction) can only
come from a preset; when the study was made from one, the preset is named.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from typing import Any

import sqlalchemy.engine

from search.budget.shares import TRIAL_CEILING
from search.study.settings import RUN_SETTINGS


def _defaults() -> dict[str, Any]:
    """The default StudySpec as stored (JSON types), to spot settings a study changed."""
    from search.study.spec import StudySpec

    return json.loads(StudySpec().to_json())


def safe_url(url: str) -> str:
    """The storage URL with any password hidden."""
    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def reproduce_command(name: str, spec: dict[str, Any], url: str) -> tuple[str, list[str]]:
    """(the ``python -m search run`` line, settings that no flag can set)."""
    from search.study.spec import StudySpec

    defaults = _defaults()
    argv = ["python", "-m", "search", "run", "--study", name]
    preset = spec.get("preset")
    if preset:
        argv += ["--preset", str(preset)]
    unflagged: list[str] = []
    options = {s.name: s for s in RUN_SETTINGS if s.study}
    names = [f.name for f in dataclasses.fields(StudySpec)] + sorted(set(spec) - set(defaults))
    for key in names:
        if key in ("name", "preset") or key not in spec:
            continue
        value = spec[key]
        if key == "trials" and spec.get("budget") and value >= TRIAL_CEILING:
            continue  # the budget's time decides the count
        setting = options.get(key)
        if setting is None:  # only a preset sets it: worth a mention when not the default
            if not preset and value is not None and value != defaults.get(key):
                unflagged.append(key)
            continue
        flag = setting.flag
        if isinstance(value, bool) or value is None:
            if value:
                argv.append(flag)
        else:
            argv += [flag, str(value)]
    argv += ["--storage", safe_url(url)]
    return " ".join(shlex.quote(a) for a in argv), unflagged
