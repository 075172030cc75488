"""The token endpoint (RFC 6749 client credentials) and Bearer checks (RFC 6750)."""

from __future__ import annotations

import base64

import aiohttp
import pytest

from powerp_async.simulator import Simulator, SimulatorSettings

from .conftest import SECRET, FakeClock, fetch_token

NO_BEARER = (
    "no Bearer token: expected the header 'Authorization: Bearer <access_token>'"
)
FORM = {
    "client_id": "tester",
    "client_secret": SECRET,
    "grant_type": "client_credentials",
}


async def _token_request(
    http: aiohttp.ClientSession, sim: Simulator, **kwargs: object
) -> tuple[int, dict[str, object], aiohttp.ClientResponse]:
    async with http.post(f"{sim.base_url}/v1/auth/token", **kwargs) as response:
        return response.status, await response.json(), response


async def test_form_credentials_get_a_bearer_token(http, sim) -> None:
    status, answer, response = await _token_request(http, sim, data=FORM)

    assert status == 200
    assert set(answer) == {"access_token", "token_type", "expires_in"}
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 60
    assert len(answer["access_token"]) == 43
    assert response.headers["Cache-Control"] == "no-store"
    assert sim.stats.tokens_issued == 1


async def test_each_token_is_new(http, sim) -> None:
    first = await fetch_token(http, sim)
    second = await fetch_token(http, sim)

    assert first != second


async def test_basic_auth_credentials_are_accepted(http, sim) -> None:
    # RFC 6749 2.3.1: both parts form-urlencoded, then joined by a colon.
    pair = base64.b64encode(f"tester:{SECRET}".encode()).decode()
    headers = {"Authorization": f"Basic {pair}"}

    status, answer, _ = await _token_request(
        http, sim, data={"grant_type": "client_credentials"}, headers=headers
    )

    assert status == 200
    assert answer["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("form", "status", "error", "description"),
    [
        (
            {**FORM, "client_secret": "wrong"},
            401,
            "invalid_client",
            "unknown client or wrong secret",
        ),
        (
            {**FORM, "client_id": "nobody"},
            401,
            "invalid_client",
            "unknown client or wrong secret",
        ),
        (
            {"grant_type": "client_credentials"},
            401,
            "invalid_client",
            "unknown client or wrong secret",
        ),
        (
            {**FORM, "grant_type": "password"},
            400,
            "unsupported_grant_type",
            "grant_type must be client_credentials, got 'password'",
        ),
        (
            {"client_id": "tester", "client_secret": SECRET},
            400,
            "invalid_request",
            "missing grant_type: expected grant_type=client_credentials",
        ),
    ],
)
async def test_refused_token_requests(
    http, sim, form, status, error, description
) -> None:
    got_status, answer, response = await _token_request(http, sim, data=form)

    assert (got_status, answer) == (
        status,
        {"error": error, "error_description": description},
    )
    assert "WWW-Authenticate" not in response.headers
    assert sim.stats.tokens_issued == 0


async def test_wrong_basic_credentials_get_the_basic_challenge(http, sim) -> None:
    pair = base64.b64encode(b"tester:wrong").decode()
    headers = {"Authorization": f"Basic {pair}"}

    status, answer, response = await _token_request(
        http, sim, data={"grant_type": "client_credentials"}, headers=headers
    )

    assert status == 401
    assert answer["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"] == 'Basic realm="PowerP"'


async def test_credentials_in_both_places_are_refused(http, sim) -> None:
    pair = base64.b64encode(f"tester:{SECRET}".encode()).decode()

    status, answer, _ = await _token_request(
        http, sim, data=FORM, headers={"Authorization": f"Basic {pair}"}
    )

    assert status == 400
    assert answer == {
        "error": "invalid_request",
        "error_description": "client credentials came both in HTTP Basic auth and "
        "in the form: expected exactly one of the two",
    }


async def test_a_json_token_request_is_refused_as_not_a_form(http, sim) -> None:
    status, answer, _ = await _token_request(http, sim, json=FORM)

    assert status == 400
    assert answer == {
        "error": "invalid_request",
        "error_description": "expected a form-encoded body "
        "(application/x-www-form-urlencoded), got application/json",
    }


async def test_secret_never_appears_in_any_answer(http, sim) -> None:
    bodies = []
    for form in ({**FORM, "client_secret": SECRET + "x"}, FORM):
        async with http.post(f"{sim.base_url}/v1/auth/token", data=form) as response:
            bodies.append(await response.text())

    assert all(SECRET not in body for body in bodies)
    assert SECRET not in repr(sim.settings)
    assert SECRET not in repr(sim)


@pytest.mark.parametrize(
    ("header", "description"),
    [
        (
            None,
            NO_BEARER,
        ),
        (
            "Bearer",
            NO_BEARER,
        ),
        (
            "Token abc",
            NO_BEARER,
        ),
        ("Bearer not-a-token", "the access token is not known to this server"),
    ],
)
async def test_data_endpoints_refuse_a_bad_token(
    http, sim, header, description
) -> None:
    headers = {} if header is None else {"Authorization": header}

    async with http.get(f"{sim.base_url}/v1/measurements", headers=headers) as response:
        status, answer = response.status, await response.json()
        challenge = response.headers["WWW-Authenticate"]

    assert status == 401
    assert answer == {"error": "invalid_token", "error_description": description}
    assert challenge == 'Bearer error="invalid_token"'


async def test_a_token_expires_after_its_lifetime(
    http, sim, token, clock: FakeClock
) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{sim.base_url}/v1/measurements"
    statuses = []
    for elapsed_s in (0.0, 59.9, 60.0):
        clock.now_s = 1000.0 + elapsed_s
        async with http.get(url, headers=headers) as response:
            statuses.append(response.status)
            answer = await response.json()

    assert statuses == [200, 200, 401]
    assert answer == {
        "error": "invalid_token",
        "error_description": "the access token has expired: request a new one",
    }


async def test_revoked_tokens_are_refused_and_new_ones_work(http, sim, token) -> None:
    url = f"{sim.base_url}/v1/measurements"

    sim.revoke_tokens()
    async with http.get(url, headers={"Authorization": f"Bearer {token}"}) as response:
        revoked_status = response.status
    fresh = await fetch_token(http, sim)
    async with http.get(url, headers={"Authorization": f"Bearer {fresh}"}) as response:
        fresh_status = response.status

    assert (revoked_status, fresh_status) == (401, 200)


async def test_basic_credentials_are_form_urldecoded(http, clock) -> None:
    settings = SimulatorSettings(client_id="id:1", client_secret="p@ss word:%")
    pair = base64.b64encode(b"id%3A1:p%40ss+word%3A%25").decode()

    async with Simulator(settings, clock=clock) as sim:
        status, answer, _ = await _token_request(
            http,
            sim,
            data={"grant_type": "client_credentials"},
            headers={"Authorization": f"Basic {pair}"},
        )

    assert (status, answer["token_type"]) == (200, "Bearer")
