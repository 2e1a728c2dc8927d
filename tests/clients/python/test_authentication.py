"""A wrong API key reaches lago-python-client as `LagoApiError` with status 401 and
Lago's body, on every resource and method, and writes nothing."""

import pytest
from lago_python_client import Client
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, Customer, Organization, Tax

CALLS = {
    "billable_metrics.create": lambda c, code: c.billable_metrics.create(
        BillableMetric(name="x", code=code, aggregation_type="count_agg")
    ),
    "billable_metrics.find": lambda c, code: c.billable_metrics.find(code),
    "billable_metrics.find_all": lambda c, code: c.billable_metrics.find_all(),
    "billable_metrics.update": lambda c, code: c.billable_metrics.update(BillableMetric(name="x"), code),
    "billable_metrics.destroy": lambda c, code: c.billable_metrics.destroy(code),
    "customers.create": lambda c, code: c.customers.create(Customer(external_id=code)),
    "customers.find": lambda c, code: c.customers.find(code),
    "customers.find_all": lambda c, code: c.customers.find_all(),
    "customers.destroy": lambda c, code: c.customers.destroy(code),
    "taxes.create": lambda c, code: c.taxes.create(Tax(name="x", code=code, rate=1)),
    "taxes.find": lambda c, code: c.taxes.find(code),
    "taxes.find_all": lambda c, code: c.taxes.find_all(),
    "taxes.update": lambda c, code: c.taxes.update(Tax(rate=2), code),
    "taxes.destroy": lambda c, code: c.taxes.destroy(code),
    "organizations.update": lambda c, code: c.organizations.update(Organization(default_currency="EUR", city=code)),
}


@pytest.mark.parametrize("call", CALLS)
def test_a_wrong_api_key_is_401_unauthorized(api_url, unique, call):
    intruder = Client(api_key=unique("not_a_key"), api_url=api_url)

    with pytest.raises(LagoApiError) as caught:
        CALLS[call](intruder, unique("code"))

    assert caught.value.status_code == 401
    assert caught.value.response == {"status": 401, "error": "Unauthorized"}
    assert caught.value.detail == "Unauthorized"


def test_a_refused_create_writes_nothing(client, api_url, unique):
    code = unique("intruder")

    with pytest.raises(LagoApiError):
        CALLS["taxes.create"](Client(api_key=unique("not_a_key"), api_url=api_url), code)

    # The organization behind the right key has no such tax
    with pytest.raises(LagoApiError) as caught:
        client.taxes.find(code)
    assert caught.value.status_code == 404
