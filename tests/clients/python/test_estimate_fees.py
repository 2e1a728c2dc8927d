"""lago-python-client's `events.estimate_fees` against the local stack: the fee an event would
create on a pay-in-advance charge, priced against the usage already aggregated (events drained
through `POST /_local/drain`, the stack's synchronisation point), and nothing stored. Expected
amounts are worked out by hand from SEMANTICS §4.9 in comments."""

import httpx
import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BillableMetric,
    Charge,
    Charges,
    Customer,
    Event,
    Plan,
    Subscription,
)

# A generous bound for a shared emulator on a small machine; a limit, not a wait.
DRAIN_TIMEOUT_S = 900

# 0–5 GB at 0.02 USD + 0.01 flat, 6 GB and more at 0.01 USD + 0.01 flat.
TIERS = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 5, "per_unit_amount": "0.02", "flat_amount": "0.01"},
        {"from_value": 6, "to_value": None, "per_unit_amount": "0.01", "flat_amount": "0.01"},
    ]
}


def drain(api_url):
    """Returns once every event accepted so far is aggregated (local runner only)."""
    response = httpx.post(f"{api_url.rstrip('/')}/_local/drain", timeout=DRAIN_TIMEOUT_S)
    assert response.status_code == 200, response.text


def test_estimate_fees_prices_the_next_event_against_the_aggregated_usage(client, api_url, unique):
    # Given a sum of gb priced by TIERS on a pay-in-advance charge, and a subscription
    metric_code = unique("gb")
    metric = client.billable_metrics.create(
        BillableMetric(name="Storage", code=metric_code, aggregation_type="sum_agg", field_name="gb")
    )
    plan_code = unique("plan")
    client.plans.create(
        Plan(
            name="Storage",
            code=plan_code,
            interval="monthly",
            amount_cents=0,
            amount_currency="USD",
            pay_in_advance=False,
            charges=Charges(
                __root__=[
                    Charge(
                        billable_metric_id=metric.lago_id,
                        charge_model="graduated",
                        pay_in_advance=True,
                        invoiceable=True,
                        properties=TIERS,
                    )
                ]
            ),
        )
    )
    customer_id = unique("cus")
    client.customers.create(Customer(external_id=customer_id, name="Acme", currency="USD"))
    subscription_id = unique("sub")
    client.subscriptions.create(
        Subscription(external_customer_id=customer_id, plan_code=plan_code, external_id=subscription_id)
    )

    def gb(value, transaction_id):
        return Event(
            transaction_id=transaction_id,
            external_subscription_id=subscription_id,
            code=metric_code,
            properties={"gb": value},
        )

    # When 3 GB are estimated with nothing used yet
    first = gb(3, unique("tr"))
    fees = client.events.estimate_fees(first)["fees"]

    # Then one fee: 3 × 0.02 + 0.01 = 0.07 USD against 0 before = 7 cents, never stored
    assert len(fees) == 1
    fee = fees[0]
    assert (fee.units, fee.amount_cents, fee.events_count) == ("3.0", 7, 1)
    assert fee.lago_id is None and fee.lago_invoice_id is None
    assert fee.pay_in_advance is True
    assert fee.item.type == "charge" and fee.item.code == metric_code
    assert fee.item.item_type == "BillableMetric" and fee.item.lago_item_id == metric.lago_id
    with pytest.raises(LagoApiError) as caught:
        client.events.find(first.transaction_id)
    assert caught.value.status_code == 404

    # When the 3 GB are sent and aggregated, then 1 GB more is estimated
    client.events.create(first)
    drain(api_url)
    fees = client.events.estimate_fees(gb(1, unique("tr")))["fees"]

    # Then 4 GB cost 4 × 0.02 + 0.01 = 0.09 USD, 0.02 more than the 0.07 already paid: 2 cents
    assert [(f.units, f.amount_cents) for f in fees] == [("1.0", 2)]

    # And a metric the subscription's plan does not price in advance is Lago's 404/422
    with pytest.raises(LagoApiError) as caught:
        client.events.estimate_fees(
            Event(transaction_id=unique("tr"), external_subscription_id=subscription_id, code=unique("nope"))
        )
    assert caught.value.status_code == 404
    assert caught.value.response["code"] == "billable_metric_not_found"
