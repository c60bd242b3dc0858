"""A table's date columns read as numbers (``model/datasets/dates.py``): which columns, which numbers, and predict's."""

from __future__ import annotations

import datetime
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model.datasets.dates import PARTS, date_columns, part_names, parts, seconds
from model.datasets.encoding import TableEncoding
from model.datasets.errors import DatasetError

UTC = datetime.timezone.utc


def test_only_columns_whose_every_present_cell_is_an_iso_date_are_dates() -> None:
    frame = pd.DataFrame(
        {
            "iso": ["2017-01-01", "2017-01-01 06:03:07", "2017-01-01T06:03:07Z", None],
            "one_not": ["2017-01-01", "2017-01-02", "soon", None],  # a category, not a date
            "us": ["01/02/2017", "03/04/2017", "05/06/2017", None],  # January or February? stays text
            "number": [20170101, 20170102, 20170103, 20170104],
            "typed": pd.to_datetime(["2017-01-01", "2018-01-01", None, "2019-01-01"]),
            "empty": [None, None, None, None],
        }
    )
    assert date_columns(frame) == ["iso", "typed"]
    # a column whose parts' names are taken stays as it is
    assert date_columns(frame[["iso"]].assign(**{"iso (hour)": 1.0})) == []


def test_a_dates_parts_are_its_days_hour_weekday_and_time_of_year() -> None:
    cells = pd.Series(["1970-01-01", "2017-01-01T06:30:00Z", "2017-01-01T08:30:00+02:00", "2024-12-31 23:59:59"])
    got = parts(seconds(cells))
    assert PARTS == ("days", "hour", "weekday", "time of year")
    assert got[0].tolist() == [0.0, 0.0, 3.0, 0.0]  # 1970-01-01 was a Thursday
    assert np.array_equal(got[1], got[2])  # an offset is read as the same instant
    assert got[1, 1] == 6.5 and got[1, 2] == 6.0  # 2017-01-01 was a Sunday
    assert got[3, 1] == pytest.approx(23 + 59 / 60 + 59 / 3600) and got[3, 2] == 1.0  # a Tuesday
    assert min(got[3, 3], 1 - got[3, 3]) < 2 / 365  # the year's turn, within the mean year's drift of a day or two
    assert np.isnan(parts(seconds(pd.Series([None, "2017-01-01"])))[0]).all()


@settings(max_examples=200, deadline=None)
@given(st.datetimes(min_value=datetime.datetime(1800, 1, 1), max_value=datetime.datetime(2200, 1, 1)))
def test_parts_agree_with_the_calendar_whatever_the_iso_form(when: datetime.datetime) -> None:
    when = when.replace(microsecond=0)
    forms = [when.isoformat(), when.isoformat(sep=" "), when.replace(tzinfo=UTC).isoformat(), when.isoformat() + "Z"]
    got = parts(seconds(pd.Series(forms)))
    assert (got == got[0]).all()
    days, hour, weekday, year = got[0]
    assert hour == pytest.approx(when.hour + when.minute / 60 + when.second / 3600, abs=1e-9)
    assert weekday == when.weekday()
    assert 0.0 <= year < 1.0
    # the time of year drifts from the calendar's by at most a day and a half over these four centuries
    start = datetime.datetime(when.year, 1, 1)
    calendar = (when - start).total_seconds() / 86400 / 365.2425
    assert min(abs(year - calendar), 1 - abs(year - calendar)) < 1.5 / 365


def test_a_date_column_is_read_as_numbers_and_kept_in_the_encodings_json() -> None:
    train = pd.DataFrame({"when": ["2017-01-01T06:00:00Z", "2017-06-01T18:00:00Z", None, "2018-01-01"], "x": [1.0] * 4})
    enc = TableEncoding.fit(train)
    assert enc.dates == ["when"] and enc.columns == ["x", "when"]
    assert set(part_names("when")) <= set(enc.numeric) and "when" not in enc.text
    again = TableEncoding.from_json(json.loads(json.dumps(enc.to_json())))
    assert again == enc and np.array_equal(again.transform(train), enc.transform(train))
    # a missing date is filled as a missing number is: every part at its training median
    filled = enc.transform(train.iloc[[2]])
    assert np.isfinite(filled).all()
    # an encoding stored before dates were read has none
    old = enc.to_json()
    del old["dates"]
    assert TableEncoding.from_json(old).dates == []


def test_text_in_a_date_column_is_refused_with_its_line_unless_read_as_missing() -> None:
    enc = TableEncoding.fit(pd.DataFrame({"when": ["2017-01-01", "2017-02-01", "2017-03-01"], "x": [1.0, 2, 3]}))
    rows = pd.DataFrame({"when": ["2017-01-15", "tomorrow"], "x": [1.0, 2.0]})
    refused = r"column 'when' holds text where the study has dates: 'tomorrow' on lines 3;"
    with pytest.raises(DatasetError, match=refused):
        enc.transform(rows)
    as_missing = enc.transform(rows, numbers="missing")
    assert np.array_equal(as_missing[1], enc.transform(rows.assign(when=["2017-01-15", None]))[1])
