"""The users flow's logic, pure: preferences, addresses (one default), devices, account status, postal codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flows.outcome import Refusal
from flows.users import logic
from topology.messages import (
    AccountSuspended,
    AddAddress,
    AddressAdded,
    ChangeAddress,
    CloseAccount,
    PreferencesUpdated,
    RegisterDevice,
    RegisterUser,
    ReinstateAccount,
    RemoveAddress,
    SuspendAccount,
    UnregisterDevice,
    UpdatePreferences,
    UpdateProfile,
)
from topology.messages.users import MAX_ADDRESSES, MAX_DEVICES, Address, Channels, QuietHours
from topology.postal import POSTAL_RULES, postal_code_problem

AT = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
HOME = Address(name="Ann Smith", line1="1 Main St", city="Berlin", postal_code="10115", country="DE")
WORK = Address(name="Ann Smith", line1="Office 2", city="London", postal_code="SW1A 1AA", country="GB")


class Run:
    """One user fed commands in turn, each under its own id, a second later than the one before."""

    def __init__(self) -> None:
        self.user: logic.User | None = None
        self.n = 0

    def __call__(self, message: Any) -> list[Any] | Refusal:
        self.n += 1
        before = self.user
        self.user, out = logic.handle(self.user, message, f"c{self.n}", AT + timedelta(seconds=self.n))
        if isinstance(out, Refusal):
            assert self.user is before, "a refusal changes no state"
            return out
        return [send.message for send in out]


@pytest.fixture
def ann() -> Run:
    run = Run()
    run(RegisterUser(user_id="ann", email="ann@example.com", name="Ann"))
    return run


def test_preferences_change_only_what_is_given_and_a_consent_is_dated_when_given(ann: Run) -> None:
    [event] = ann(UpdatePreferences(user_id="ann", locale="de-DE", marketing_consent=True))
    assert isinstance(event, PreferencesUpdated)
    given_at = AT + timedelta(seconds=2)
    assert (event.preferences.locale, event.preferences.marketing_consent_at) == ("de-DE", given_at)
    assert event.preferences.channels == Channels(transactional=("email",), marketing=())
    quiet = QuietHours(start="22:00", end="07:00", time_zone="Europe/Berlin")
    [event] = ann(
        UpdatePreferences(
            user_id="ann",
            channels=Channels(transactional=("push", "email", "push"), marketing=("sms",)),
            quiet_hours=quiet,
            marketing_consent=True,  # held already: the date stays the first opt-in's
        )
    )
    assert event.preferences.channels == Channels(transactional=("email", "push"), marketing=("sms",))
    assert (event.preferences.quiet_hours, event.preferences.locale) == (quiet, "de-DE")
    assert event.preferences.marketing_consent_at == given_at
    assert ann(UpdatePreferences(user_id="ann", locale="de-DE")) == [], "nothing changes: nothing is told"
    [event] = ann(UpdatePreferences(user_id="ann", marketing_consent=False, quiet_hours=None))
    assert (event.preferences.marketing_consent, event.preferences.marketing_consent_at) == (False, None)
    assert event.preferences.quiet_hours is None


def test_the_first_address_is_the_default_and_the_default_moves_when_asked_or_when_it_goes(ann: Run) -> None:
    [added] = ann(AddAddress(user_id="ann", address_id="a1", address=HOME))
    assert isinstance(added, AddressAdded)
    assert [(a.address_id, a.default) for a in added.addresses] == [("a1", True)]
    [added] = ann(AddAddress(user_id="ann", address_id="a2", address=WORK))
    assert [(a.address_id, a.default) for a in added.addresses] == [("a1", True), ("a2", False)]
    assert ann(AddAddress(user_id="ann", address_id="a2", address=WORK)) == [], "an id saved already: nothing"
    [changed] = ann(ChangeAddress(user_id="ann", address_id="a2", address=WORK, make_default=True))
    assert [(a.address_id, a.default) for a in changed.addresses] == [("a1", False), ("a2", True)]
    moved = Address(**{**_fields(HOME), "line1": "2 Main St"})
    [changed] = ann(ChangeAddress(user_id="ann", address_id="a1", address=moved))
    assert [(a.line1, a.default) for a in changed.addresses] == [("2 Main St", False), ("Office 2", True)]
    [removed] = ann(RemoveAddress(user_id="ann", address_id="a2"))
    assert [(a.address_id, a.default) for a in removed.addresses] == [("a1", True)], "the first left takes over"
    assert ann(RemoveAddress(user_id="ann", address_id="a2")) == []
    assert ann(ChangeAddress(user_id="ann", address_id="nope", address=HOME)) == []


def _fields(address: Address) -> dict[str, Any]:
    return {f: getattr(address, f) for f in address.__struct_fields__}


def test_an_address_past_the_limit_or_with_a_postal_code_of_another_shape_is_refused(ann: Run) -> None:
    bad = Address(**{**_fields(HOME), "postal_code": "1234"})
    refused = ann(AddAddress(user_id="ann", address_id="bad", address=bad))
    assert isinstance(refused, Refusal) and "postal_code" in refused.reason and "DE" in refused.reason
    for n in range(MAX_ADDRESSES):
        assert ann(AddAddress(user_id="ann", address_id=f"a{n}", address=HOME)) != []
    refused = ann(AddAddress(user_id="ann", address_id="one-more", address=HOME))
    assert isinstance(refused, Refusal) and str(MAX_ADDRESSES) in refused.reason


OPS = st.lists(
    st.tuples(st.sampled_from(["add", "change", "default", "remove"]), st.integers(0, 5)), min_size=1, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(OPS)
def test_any_series_of_address_changes_keeps_one_default_among_unique_saved_addresses(ops: list[Any]) -> None:
    run = Run()
    run(RegisterUser(user_id="u", email="u@example.com", name="U"))
    for op, n in ops:
        command = {
            "add": AddAddress(user_id="u", address_id=f"a{n}", address=HOME),
            "change": ChangeAddress(user_id="u", address_id=f"a{n}", address=WORK),
            "default": ChangeAddress(user_id="u", address_id=f"a{n}", address=HOME, make_default=True),
            "remove": RemoveAddress(user_id="u", address_id=f"a{n}"),
        }[op]
        out = run(command)
        assert run.user is not None
        held = run.user.addresses
        assert len({a.address_id for a in held}) == len(held) <= MAX_ADDRESSES
        assert sum(a.default for a in held) == (1 if held else 0)
        if out:  # what is told is the whole book as it is now
            assert out[0].addresses == held


def test_devices_keep_the_newest_and_the_same_token_twice_changes_nothing(ann: Run) -> None:
    for n in range(MAX_DEVICES + 2):
        [event] = ann(RegisterDevice(user_id="ann", device_id=f"d{n}", platform="ios", token=f"tok{n}"))
    assert [d.device_id for d in event.devices] == [f"d{n}" for n in range(2, MAX_DEVICES + 2)]
    assert ann(RegisterDevice(user_id="ann", device_id="d5", platform="ios", token="tok5")) == []
    [event] = ann(RegisterDevice(user_id="ann", device_id="d5", platform="ios", token="fresh"))
    assert event.devices[-1].token == "fresh" and event.devices[-1].device_id == "d5"
    [event] = ann(UnregisterDevice(user_id="ann", device_id="d5"))
    assert "d5" not in {d.device_id for d in event.devices}
    assert ann(UnregisterDevice(user_id="ann", device_id="d5")) == []


def test_a_suspended_or_closed_account_takes_none_of_its_own_changes_and_every_status_is_recorded(ann: Run) -> None:
    by = {"by": "sue", "os_user": "root"}
    [event] = ann(SuspendAccount(user_id="ann", reason="chargebacks", **by))
    assert event == AccountSuspended(user_id="ann", reason="chargebacks", **by)
    assert ann(UpdateProfile(user_id="ann", name="Ann B")) == []
    assert ann(AddAddress(user_id="ann", address_id="a1", address=HOME)) == []
    assert ann(ReinstateAccount(user_id="ann", **by)) != []
    assert ann(UpdateProfile(user_id="ann", name="Ann B")) != []
    assert ann(CloseAccount(user_id="ann", reason="asked to", **by)) != []
    assert ann.user is not None and ann.user.status == "closed"
    assert ann(UpdatePreferences(user_id="ann", locale="fr-FR")) == []
    nobody = Run()
    assert len(nobody(SuspendAccount(user_id="ghost", reason="r", **by))) == 1, "recorded, for the audit log"
    assert nobody.user is None


@pytest.mark.parametrize(
    ("country", "code", "fine"),
    [
        ("DE", "10115", True),
        ("DE", "1011", False),
        ("GB", "sw1a 1aa", True),
        ("GB", "SW1A1AA", True),
        ("GB", "12345", False),
        ("US", "10001-1234", True),
        ("US", "1000", False),
        ("NL", "1012 AB", True),
        ("CA", "K1A 0B1", True),
        ("PL", "00-001", True),
        ("PL", "00001", False),
        ("DE", "", False),  # a country with a shape of its own requires a code
        ("AE", "", True),  # elsewhere one may be left out
        ("BO", "A-1 2", True),
        ("BO", "-12", False),
        ("BO", "12345678901", False),
    ],
)
def test_postal_codes_take_their_countrys_shape(country: str, code: str, fine: bool) -> None:
    problem = postal_code_problem(country, code)
    assert (problem is None) is fine, problem
    if problem:
        assert problem.startswith("postal_code: ")
        if country in POSTAL_RULES:
            assert POSTAL_RULES[country].shape in problem
