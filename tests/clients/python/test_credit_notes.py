"""lago-python-client's `credit_notes` find and find_all work against our API unchanged, on the
credit note the system issues by itself when a pay-in-advance plan is terminated mid-period.

The billing clock is fired through `POST /_local/billing-run` (the local runner's
synchronisation point: it runs the clock at the given instant and drains the billing queue).
Expected amounts follow SEMANTICS §7 ("Termination of a pay-in-advance plan").
"""

import datetime
import uuid

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Customer, Plan, Subscription

BILLING_RUN_TIMEOUT_S = 120


def billing_run(api_url, at):
    """Runs the billing clock at `at` and waits until its work is done."""
    response = httpx.post(
        f"{api_url.rstrip('/')}/_local/billing-run",
        json={"time": at.strftime("%Y-%m-%dT%H:%M:%SZ")},
        timeout=BILLING_RUN_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text


def test_a_terminated_advance_plan_credit_note_is_found_and_listed(fresh_client, api_url, unique):
    client = fresh_client
    plan_code = unique("weekly")
    customer_id = unique("cus")
    subscription_id = unique("sub")
    # Given a weekly plan of 2999 paid in advance and a subscription to it from now on
    # (anniversary: a 7-day period starting today, billed 2999 at once).
    client.plans.create(
        Plan(
            name="Weekly",
            code=plan_code,
            interval="weekly",
            amount_cents=2999,
            amount_currency="EUR",
            pay_in_advance=True,
        )
    )
    client.customers.create(Customer(external_id=customer_id, name="Credit", timezone="UTC"))
    started = client.subscriptions.create(
        Subscription(
            external_customer_id=customer_id,
            external_id=subscription_id,
            plan_code=plan_code,
            billing_time="anniversary",
        )
    )
    started_at = datetime.datetime.fromisoformat(started.started_at.replace("Z", "+00:00"))
    billing_run(api_url, started_at + datetime.timedelta(seconds=1))

    # When it is terminated on its first day and the billing run closes the termination
    client.subscriptions.destroy(subscription_id)
    billing_run(api_url, datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=2))

    # Then find_all lists one credit note for the 6 unused days: 6/7 × 2999 = 2570.57 → 2571
    listed = client.credit_notes.find_all({"external_customer_id": customer_id})
    notes = listed["credit_notes"]
    assert len(notes) == 1, notes
    note = notes[0]
    assert uuid.UUID(note.lago_id)
    assert (note.reason, note.credit_status, note.refund_status, note.currency) == (
        "order_change",
        "available",
        None,
        "EUR",
    )
    assert (note.total_amount_cents, note.credit_amount_cents, note.balance_amount_cents) == (2571, 2571, 2571)
    assert (note.sub_total_excluding_taxes_amount_cents, note.taxes_amount_cents) == (2571, 0)
    assert note.number.endswith("-CN001"), note.number
    assert listed["meta"]["total_count"] == 1
    # And find returns the very same note
    assert client.credit_notes.find(note.lago_id) == note


def test_an_unknown_credit_note_is_the_clients_not_found_error(fresh_client):
    with pytest.raises(LagoApiError) as error:
        client = fresh_client
        client.credit_notes.find(str(uuid.uuid4()))
    assert error.value.status_code == 404
    assert error.value.response["code"] == "credit_note_not_found"
