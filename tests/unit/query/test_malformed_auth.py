"""An Authorization header that is not UTF-8 (or not text at all) is a 401, never a server error."""

from __future__ import annotations

from monitor.query.requests import check_auth


def test_an_authorization_header_that_is_not_utf8_is_a_401_not_an_error():
    # aiohttp hands undecodable header bytes on as lone surrogates (surrogateescape)
    for header in ("Bearer \udcff\udcfe", "\udcc3( s3cret", "Bearer s3cret\udc80", b"Bearer s3cret", 42):
        err = check_auth("s3cret", header)
        assert err is not None and err.status == 401 and err.headers == {"WWW-Authenticate": "Bearer"}, header
