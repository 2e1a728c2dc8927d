"""lago-python-client drives the metering pipeline end to end: events in through
`events.create` / `events.batch_create`, aggregated by the local runner's worker (drained through
`POST /_local/drain`, the stack's synchronisation point: no test waits on a clock), priced by
`customers.current_usage`. Expected amounts are worked out by hand in comments."""

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import required_env
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BatchEvent,
    BillableMetric,
    Charge,
    Charges,
    Customer,
    Event,
    Plan,
    Subscription,
)
from lago_python_client.models.customer_usage import CustomerUsageResponse

# Generous bounds for a shared emulator on a small machine; these are limits, not waits.
DRAIN_TIMEOUT_S = 900
REQUEST_TIMEOUT = httpx.Timeout(120.0)


def drain(api_url):
    """Returns once every event accepted so far is aggregated (local runner only)."""
    response = httpx.post(
        f"{api_url.rstrip('/')}/_local/drain",
        timeout=DRAIN_TIMEOUT_S,
    )
    assert response.status_code == 200, response.text


def slow_current_usage(api_url, customer_id, subscription_id):
    """`customers.current_usage` as the client parses it, read with a longer timeout than the
    client's fixed 5 s: current usage of a unique count reads one item per distinct value, and
    the emulator scans its whole table for each page of them (12,500 values take 7-9 s on a
    loaded machine; DynamoDB answers in three queries)."""
    response = httpx.get(
        f"{api_url.rstrip('/')}/api/v1/customers/{customer_id}/current_usage",
        params={"external_subscription_id": subscription_id},
        headers={"Authorization": f"Bearer {required_env('LAGO_API_KEY')}"},
        timeout=REQUEST_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    return CustomerUsageResponse.parse_obj(response.json()["customer_usage"])


def subscribe(client, unique, metric_code, charge_model, properties, **plan_fields):
    """A customer subscribed to a new monthly USD plan with one charge on `metric_code`;
    returns (external_customer_id, external_subscription_id)."""
    metric = client.billable_metrics.find(metric_code)
    plan_code = unique("plan")
    fields = {"amount_cents": 0, "pay_in_advance": False}
    fields.update(plan_fields)
    client.plans.create(
        Plan(
            name="Metered",
            code=plan_code,
            interval="monthly",
            amount_currency="USD",
            charges=Charges(
                __root__=[
                    Charge(
                        billable_metric_id=metric.lago_id,
                        charge_model=charge_model,
                        properties=properties,
                    )
                ]
            ),
            **fields,
        )
    )
    customer_id = unique("cus")
    client.customers.create(Customer(external_id=customer_id, name="Acme", currency="USD"))
    subscription_id = unique("sub")
    created = client.subscriptions.create(
        Subscription(external_customer_id=customer_id, plan_code=plan_code, external_id=subscription_id)
    )
    assert created.status == "active"
    return customer_id, subscription_id


# 120.00 USD a month in advance; users: the first 10,000 free, the next 2,000 at 0.01 USD,
# every one after at 0.005 USD ("classic" integer ranges, SEMANTICS §4.2).
USER_TIERS = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10000, "per_unit_amount": "0", "flat_amount": "0"},
        {"from_value": 10001, "to_value": 12000, "per_unit_amount": "0.01", "flat_amount": "0"},
        {"from_value": 12001, "to_value": None, "per_unit_amount": "0.005", "flat_amount": "0"},
    ]
}


def send_batch(client, batch, attempts=5):
    """`events.batch_create`, sent again if the client gives up waiting (its timeout is fixed
    at 5 s): a batch is idempotent, so resending one that was stored answers its events again."""
    for attempt in range(attempts):
        try:
            return client.events.batch_create(batch)
        except httpx.TimeoutException:
            if attempt == attempts - 1:
                raise


def user_event(subscription_id, metric_code, transaction_id, user):
    return Event(
        transaction_id=transaction_id,
        external_subscription_id=subscription_id,
        code=metric_code,
        properties={"user_id": user},
    )


def test_distinct_users_are_billed_by_graduated_tiers_to_the_cent(client, api_url, unique):
    # Given a unique count of user_id, priced by USER_TIERS on a 120 USD pay-in-advance plan
    metric_code = unique("users")
    client.billable_metrics.create(
        BillableMetric(name="Users", code=metric_code, aggregation_type="unique_count_agg", field_name="user_id")
    )
    customer_id, subscription_id = subscribe(
        client, unique, metric_code, "graduated", USER_TIERS, amount_cents=12000, pay_in_advance=True
    )

    # When three events arrive, two of them for the same user
    first = user_event(subscription_id, metric_code, unique("tr"), "user_00000")
    second = user_event(subscription_id, metric_code, unique("tr"), "user_00001")
    third = user_event(subscription_id, metric_code, unique("tr"), "user_00000")
    accepted = [client.events.create(e, timeout=REQUEST_TIMEOUT) for e in (first, second, third)]
    assert [a.transaction_id for a in accepted] == [first.transaction_id, second.transaction_id, third.transaction_id]
    assert all(a.external_subscription_id == subscription_id and a.code == metric_code for a in accepted)

    # And the second is sent again as is: an idempotent 200 answering the stored event
    replay = client.events.create(second, timeout=REQUEST_TIMEOUT)
    assert replay == accepted[1]
    assert client.events.find(second.transaction_id) == accepted[1]

    # And again with another user: the identity is taken, 422 value_already_exist
    conflicting = user_event(subscription_id, metric_code, second.transaction_id, "user_99999")
    with pytest.raises(LagoApiError) as caught:
        client.events.create(conflicting, timeout=REQUEST_TIMEOUT)
    assert caught.value.status_code == 422
    assert caught.value.response["error_details"] == {"transaction_id": ["value_already_exist"]}
    assert client.events.find(second.transaction_id).properties == {"user_id": "user_00001"}

    # Then, once aggregated: 2 distinct users over 3 events (the replay counted once), all in
    # the free tier: 0 USD
    drain(api_url)
    usage = client.customers.current_usage(customer_id, subscription_id)
    assert len(usage.charges_usage) == 1
    charge = usage.charges_usage[0]
    assert (charge.units, charge.amount_cents, charge.events_count) == ("2.0", 0, 3)
    assert (usage.amount_cents, usage.total_amount_cents, usage.currency) == (0, 0, "USD")
    assert charge.billable_metric.code == metric_code
    assert charge.charge.charge_model == "graduated"

    # When 12,500 users (user_00000 .. user_12499, the first two already seen) send one event
    # each, in 125 batches of 100 (each drained before the next, which keeps the emulator's
    # queue short: its FIFO sends slow down with every message waiting)
    users = [f"user_{i:05d}" for i in range(12500)]
    for start in range(0, len(users), 100):
        send_batch(
            client,
            BatchEvent(
                events=[
                    user_event(subscription_id, metric_code, f"{subscription_id}_bulk_{i}", users[i])
                    for i in range(start, start + 100)
                ]
            ),
        )
        drain(api_url)

    # Then 12,500 distinct users are billed:
    #   tier 0-10,000:       10,000 × 0                                   =  0.00
    #   tier 10,001-12,000:  (12,000 - 10,001 + 1) = 2,000 × 0.01         = 20.00
    #   tier 12,001+:        (12,500 - 12,001 + 1) =   500 × 0.005        =  2.50
    # 2,500 paid users, 22.50 USD = 2250 cents, over 3 + 12,500 = 12,503 events (a batch sent
    # again after a client timeout is not counted twice)
    usage = slow_current_usage(api_url, customer_id, subscription_id)
    charge = usage.charges_usage[0]
    assert (charge.units, charge.amount_cents, charge.events_count) == ("12500.0", 2250, 12503)
    assert (usage.amount_cents, usage.total_amount_cents) == (2250, 2250)


def test_a_hundred_concurrent_sends_of_one_event_store_it_once_and_count_it_once(client, api_url, unique):
    # Given a count metric at 1 USD per event
    metric_code = unique("calls")
    client.billable_metrics.create(BillableMetric(name="Calls", code=metric_code, aggregation_type="count_agg"))
    customer_id, subscription_id = subscribe(client, unique, metric_code, "standard", {"amount": "1"})
    event = Event(
        transaction_id=unique("tr"),
        external_subscription_id=subscription_id,
        code=metric_code,
        properties={"region": "eu"},
    )

    # When 100 threads send the very same event at the same moment; a 503 (retryable by
    # contract) is sent again, at most 5 times
    senders = 100
    start = threading.Barrier(senders)

    def send(_):
        start.wait()
        statuses = []
        for _attempt in range(5):
            try:
                return statuses + [200], client.events.create(event, timeout=REQUEST_TIMEOUT)
            except LagoApiError as e:
                statuses.append(e.status_code)
                if e.status_code != 503:
                    return statuses, e.response
        return statuses, None

    with ThreadPoolExecutor(max_workers=senders) as pool:
        results = list(pool.map(send, range(senders)))

    # Then every send ends in 200 (no 422, no 5xx left unretried), all answering one event
    final_statuses = [statuses[-1] for statuses, _ in results]
    assert final_statuses == [200] * senders, [s for s, _ in results if s[-1] != 200]
    stored = results[0][1]
    assert all(answer == stored for _, answer in results), [a for _, a in results if a != stored]
    assert client.events.find(event.transaction_id) == stored

    # And once aggregated it is counted once: 1 event, 1 unit, 1.00 USD = 100 cents
    drain(api_url)
    usage = client.customers.current_usage(customer_id, subscription_id)
    charge = usage.charges_usage[0]
    assert (charge.units, charge.amount_cents, charge.events_count) == ("1.0", 100, 1)
