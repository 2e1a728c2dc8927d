"""Two organizations, each through lago-python-client with its own API key, cannot see or touch
each other's billable metrics, customers or taxes (404 on find, update and destroy; absent from
lists), and the same code or external_id lives independently in both."""

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, Customer, Tax


def listed(resource_client, resource, key):
    """Every key of the organization's list, read page after page."""
    keys, page = [], 1
    while page is not None:
        response = resource_client.find_all({"page": page, "per_page": 100})
        keys += [getattr(item, key) for item in response[resource]]
        page = response["meta"]["next_page"]
    return keys


def assert_not_found(call, code):
    with pytest.raises(LagoApiError) as caught:
        call()
    assert caught.value.status_code == 404
    assert caught.value.response["code"] == code


def test_another_organization_cannot_read_list_update_or_destroy_a_metric(client, other_client, unique):
    code = unique("storage")
    mine = client.billable_metrics.create(
        BillableMetric(name="Storage", code=code, aggregation_type="sum_agg", field_name="gb")
    )

    # When the other organization tries every operation on that code
    assert_not_found(lambda: other_client.billable_metrics.find(code), "billable_metric_not_found")
    assert_not_found(
        lambda: other_client.billable_metrics.update(BillableMetric(name="Hijacked"), code),
        "billable_metric_not_found",
    )
    assert_not_found(lambda: other_client.billable_metrics.destroy(code), "billable_metric_not_found")
    assert code not in listed(other_client.billable_metrics, "billable_metrics", "code")

    # Then the owner's metric is untouched and still listed
    assert client.billable_metrics.find(code) == mine
    assert code in listed(client.billable_metrics, "billable_metrics", "code")


def test_another_organization_cannot_read_list_update_or_destroy_a_tax(client, other_client, unique):
    code = unique("vat")
    mine = client.taxes.create(Tax(name="VAT", code=code, rate=20))

    assert_not_found(lambda: other_client.taxes.find(code), "tax_not_found")
    assert_not_found(lambda: other_client.taxes.update(Tax(rate=1), code), "tax_not_found")
    assert_not_found(lambda: other_client.taxes.destroy(code), "tax_not_found")
    assert code not in listed(other_client.taxes, "taxes", "code")

    assert client.taxes.find(code) == mine


def test_another_organization_cannot_read_list_or_destroy_a_customer(client, other_client, unique):
    external_id = unique("acme")
    mine = client.customers.create(Customer(external_id=external_id, name="Acme", currency="EUR"))

    assert_not_found(lambda: other_client.customers.find(external_id), "customer_not_found")
    assert_not_found(lambda: other_client.customers.destroy(external_id), "customer_not_found")
    assert external_id not in listed(other_client.customers, "customers", "external_id")

    assert client.customers.find(external_id) == mine


def test_an_upsert_with_another_organizations_external_id_creates_a_separate_customer(client, other_client, unique):
    external_id = unique("acme")
    mine = client.customers.create(Customer(external_id=external_id, name="Acme", currency="EUR"))

    # When the other organization "upserts" the same external_id
    theirs = other_client.customers.create(Customer(external_id=external_id, name="Someone else"))

    # Then it created its own customer and the owner's is unchanged
    assert theirs.lago_id != mine.lago_id
    assert (theirs.name, theirs.currency) == ("Someone else", None)
    assert client.customers.find(external_id) == mine


def test_a_customer_cannot_refer_to_another_organizations_tax(client, other_client, unique):
    tax_code = unique("vat")
    client.taxes.create(Tax(name="VAT", code=tax_code, rate=20))

    assert_not_found(
        lambda: other_client.customers.create(Customer(external_id=unique("acme"), tax_codes=[tax_code])),
        "tax_not_found",
    )


def test_the_same_codes_live_independently_in_both_organizations(client, other_client, unique):
    metric_code, tax_code, external_id = unique("storage"), unique("vat"), unique("acme")

    # Given the same codes created in both organizations with different values
    for lago, name, rate in ((client, "Mine", 20), (other_client, "Theirs", 7)):
        lago.billable_metrics.create(BillableMetric(name=name, code=metric_code, aggregation_type="count_agg"))
        lago.taxes.create(Tax(name=name, code=tax_code, rate=rate))
        lago.customers.create(Customer(external_id=external_id, name=name))

    # When one organization updates and then destroys its copies
    other_client.billable_metrics.update(BillableMetric(name="Theirs, renamed"), metric_code)
    other_client.taxes.update(Tax(rate=8), tax_code)
    other_client.billable_metrics.destroy(metric_code)
    other_client.taxes.destroy(tax_code)
    other_client.customers.destroy(external_id)

    # Then the other organization's copies are exactly as created
    assert client.billable_metrics.find(metric_code).name == "Mine"
    assert (client.taxes.find(tax_code).name, client.taxes.find(tax_code).rate) == ("Mine", 20)
    assert client.customers.find(external_id).name == "Mine"
    # And the destroying organization's copies are gone
    assert_not_found(lambda: other_client.billable_metrics.find(metric_code), "billable_metric_not_found")
    assert_not_found(lambda: other_client.taxes.find(tax_code), "tax_not_found")
    assert_not_found(lambda: other_client.customers.find(external_id), "customer_not_found")
