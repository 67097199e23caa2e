"""The real firebase-admin path (OAuth token, messages:send, errors) against the fake FCM server."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
from support.fcm import PROJECT_ID, FakeFcm, write_service_account

from workers.notifications.app import create_app
from workers.notifications.domain import Outcome, Push, Target
from workers.notifications.sender import FirebaseSender, Retrying

PUSH = Push("bob", "Den", "Ann: hi", {"room_id": "r1", "seq": "3"}, "r1", "r1", "i1")


@pytest.fixture
async def fcm() -> AsyncIterator[FakeFcm]:
    async with FakeFcm() as server:
        yield server


@pytest.fixture
async def firebase(fcm: FakeFcm, tmp_path) -> AsyncIterator[FirebaseSender]:
    sender = FirebaseSender(str(write_service_account(tmp_path, fcm.url + "/token")), fcm.endpoint)
    yield sender
    await sender.close()


async def test_a_push_goes_to_the_endpoint_with_a_token_from_token_uri(fcm, firebase):
    assert firebase.url == f"{fcm.url}/v1/projects/{PROJECT_ID}/messages:send"
    assert await firebase.send(PUSH, Target("token", "t-ok")) is Outcome.SENT
    [grant] = fcm.token_requests
    assert grant.body["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    [send] = fcm.sends
    assert send.path == f"/v1/projects/{PROJECT_ID}/messages:send"
    assert send.headers["authorization"] == "Bearer fake-access-1"
    assert send.message == {
        "token": "t-ok",
        "notification": {"title": "Den", "body": "Ann: hi"},
        "data": {"room_id": "r1", "seq": "3"},
        "android": {"collapse_key": "r1", "priority": "high", "notification": {"tag": "r1"}},
    }


async def test_an_installation_id_is_sent_as_fid(fcm, firebase):
    assert await firebase.send(PUSH, Target("fid", "f-1")) is Outcome.SENT
    assert fcm.sends[0].message["fid"] == "f-1" and "token" not in fcm.sends[0].message


async def test_the_access_token_is_reused(fcm, firebase):
    for value in ("t-1", "t-2", "t-3"):
        await firebase.send(PUSH, Target("token", value))
    assert (len(fcm.token_requests), len(fcm.sends)) == (1, 3)


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ("unregistered", Outcome.GONE),
        ("invalid_token", Outcome.GONE),
        ("invalid_message", Outcome.FAILED),
        ("rate_limited", Outcome.RETRY),
        ("unavailable", Outcome.RETRY),
        ("internal", Outcome.RETRY),
    ],
)
async def test_answers_are_classified(fcm, firebase, answer, outcome):
    fcm.answer("t-x", answer)
    assert await firebase.send(PUSH, Target("token", "t-x")) is outcome
    assert len(fcm.sends) == 1  # firebase-admin's own retries of 500/503 are off: Retrying decides


async def test_rate_limits_and_outages_are_retried_then_succeed(fcm, firebase):
    fcm.answer("t-x", "rate_limited", "unavailable", "internal")
    assert await Retrying(firebase, attempts=4, backoff=0.01).send(PUSH, Target("token", "t-x")) is Outcome.SENT
    assert [r.status for r in fcm.sends] == [429, 503, 500, 200]


async def test_retries_are_bounded(fcm, firebase):
    fcm.answer("t-x", *["unavailable"] * 10)
    assert await Retrying(firebase, attempts=4, backoff=0.01).send(PUSH, Target("token", "t-x")) is Outcome.RETRY
    assert len(fcm.sends) == 4


async def test_an_unreachable_service_is_retried(tmp_path, fcm):
    account = write_service_account(tmp_path, fcm.url + "/token")
    sender = FirebaseSender(str(account), "http://127.0.0.1:9/v1/projects/{project_id}/messages:send")
    try:
        assert await sender.send(PUSH, Target("token", "t-x")) is Outcome.RETRY
    finally:
        await sender.close()


@pytest.mark.parametrize(
    "content",
    [None, "not json", json.dumps({"type": "authorized_user"}), json.dumps({"type": "service_account"})],
)
def test_a_bad_credentials_file_stops_the_worker_naming_the_setting(settings, tmp_path, content):
    path = tmp_path / "account.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit) as stopped:
        create_app(settings.model_copy(update={"fcm_credentials": str(path)}))
    assert "BOOCHAT_FCM_CREDENTIALS" in str(stopped.value) and str(path) in str(stopped.value)


def test_a_good_credentials_file_gives_a_firebase_sender(settings, tmp_path, fcm):
    account = write_service_account(tmp_path, fcm.url + "/token")
    app = create_app(settings.model_copy(update={"fcm_credentials": str(account), "fcm_endpoint": fcm.endpoint}))
    assert app is not None
