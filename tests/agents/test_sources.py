import json

import pytest

from agents.sources import GammaSource, MarketSourceError, SnapshotSource
from tests.support.fake_http import Reply


def gamma(url, **kwargs):
    options = {"page_size": 3, "max_pages": 10, "timeout_seconds": 2, "max_retries": 2}
    options.update(kwargs)
    sleeps = []
    return GammaSource(base_url=url, backoff_seconds=0.01, sleep=sleeps.append, **options), sleeps


def test_snapshot_source_loads_sample_markets():
    loaded = SnapshotSource().load()
    assert loaded.source == "snapshot"
    assert loaded.sample_data is True
    assert "SAMPLE" in loaded.notice
    assert len(loaded.raw_markets) >= 200


def test_snapshot_source_refuses_a_file_not_marked_as_sample(tmp_path):
    path = tmp_path / "markets.json"
    path.write_text(json.dumps({"markets": []}))
    with pytest.raises(MarketSourceError, match="not marked 'sample_data': true"):
        SnapshotSource(path).load()
    path.write_text("{broken")
    with pytest.raises(MarketSourceError, match="cannot be read"):
        SnapshotSource(path).load()


def test_gamma_pages_with_limit_and_offset_until_a_short_page(fake_server, snapshot_markets):
    markets = snapshot_markets[:7]

    def handler(request):
        offset, limit = int(request.query["offset"]), int(request.query["limit"])
        return Reply(body=markets[offset : offset + limit])

    server = fake_server(handler)
    source, _ = gamma(server.url)
    loaded = source.load()
    assert [m["id"] for m in loaded.raw_markets] == [m["id"] for m in markets]
    assert loaded.sample_data is False and loaded.source == "gamma"
    assert [r.query["offset"] for r in server.requests] == ["0", "3", "6"]
    first = server.requests[0]
    assert first.path == "/markets"
    assert first.query == {
        "active": "true",
        "closed": "false",
        "archived": "false",
        "limit": "3",
        "offset": "0",
    }


def test_gamma_stops_at_max_pages(fake_server, snapshot_markets):
    server = fake_server(lambda r: Reply(body=snapshot_markets[:3]))
    source, _ = gamma(server.url, max_pages=2)
    assert len(source.load().raw_markets) == 6
    assert len(server.requests) == 2


def test_gamma_retries_a_5xx_with_backoff_then_succeeds(fake_server):
    answers = iter([Reply(status=503, body="busy"), Reply(status=500, body="oops"), Reply(body=[])])
    server = fake_server(lambda r: next(answers))
    source, sleeps = gamma(server.url)
    loaded = source.load()
    assert loaded.raw_markets == [] and loaded.requests == 3
    assert sleeps == [0.01, 0.02]


def test_gamma_gives_up_after_bounded_retries_with_a_clear_error(fake_server):
    server = fake_server(lambda r: Reply(status=502, body="bad gateway"))
    source, sleeps = gamma(server.url, max_retries=1)
    with pytest.raises(MarketSourceError, match=r"HTTP 502.*after 2 attempts"):
        source.load()
    assert len(server.requests) == 2 and sleeps == [0.01]


def test_gamma_does_not_retry_a_4xx(fake_server):
    server = fake_server(lambda r: Reply(status=404, body="no such route"))
    source, _ = gamma(server.url)
    with pytest.raises(MarketSourceError, match="answered HTTP 404"):
        source.load()
    assert len(server.requests) == 1


def test_gamma_timeout_is_a_clear_error(fake_server):
    server = fake_server(lambda r: Reply(body=[], delay=0.5))
    source, _ = gamma(server.url, timeout_seconds=0.1, max_retries=1)
    with pytest.raises(MarketSourceError, match=r"timed out.*after 2 attempts"):
        source.load()


@pytest.mark.parametrize(
    ("body", "message"),
    [("<html>maintenance</html>", "not JSON"), ({"data": []}, "expected a JSON list")],
)
def test_gamma_malformed_body_is_a_clear_error(fake_server, body, message):
    server = fake_server(lambda r: Reply(body=body))
    source, _ = gamma(server.url)
    with pytest.raises(MarketSourceError, match=message):
        source.load()
    assert len(server.requests) == 1


def test_gamma_unreachable_is_a_clear_error(fake_server):
    server = fake_server(lambda r: Reply(body=[]))
    url = server.url
    server.__exit__(None, None, None)
    source, _ = gamma(url, max_retries=0)
    with pytest.raises(MarketSourceError, match="could not connect"):
        source.load()


def test_gamma_request_never_outlives_the_deadline(fake_server):
    server = fake_server(lambda r: Reply(body=[], delay=2))
    left = iter([0.2, 0.0])
    source, _ = gamma(server.url, timeout_seconds=30, time_left=lambda: next(left))
    with pytest.raises(MarketSourceError, match="deadline has passed"):
        source.load()
    assert len(server.requests) == 1
