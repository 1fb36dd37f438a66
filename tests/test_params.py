"""Numbers in query strings: superscripts, other scripts' digits and
overlong numbers are a clear 400 (or "not found"), never a 500."""

import pytest

from hub.web.params import number

from .hubweb import signed_in
from .hubworld import world

ODD = ["²", "١٢", "9" * 30, "-1", "1e3", " 1"]


def test_number_takes_only_plain_ascii_digits():
    assert number("42") == 42 and number("000123456") == 123456
    assert [number(text) for text in ODD + ["", None]] == [None] * (len(ODD) + 2)


@pytest.mark.parametrize("odd", ODD[:-1])  # " 1" is fine where a form strips it
def test_odd_numbers_in_query_strings_are_refused_not_a_crash(hub_db, hub_app, tmp_path, odd):
    world(hub_db, tmp_path)
    client = signed_in(hub_app, hub_db, "admin")
    for path in (f"/api/v1/tickets?limit={odd}", f"/api/v1/hotspots?weeks={odd}",
                 f"/tickets/?page={odd}", f"/hotspots/?plan={odd}",
                 f"/open311/v2/requests.json?service_request_id={odd}",
                 f"/open311/v2/requests/{odd}.json"):
        status = client.get(path).status_code
        assert status in (400, 404), (path, status)
