"""lago-python-client's `customers` works against our API unchanged: create as an upsert on
`external_id` (a second create changes the sent fields and keeps the others), find, list with
page pagination, destroy, every field round-tripping (billing configuration, shipping address,
metadata, tax codes resolved to taxes), and Lago's 404/422 errors as `LagoApiError`."""

import re
import uuid

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    Address,
    Customer,
    CustomerBillingConfiguration,
    Metadata,
    MetadataList,
    Organization,
    Tax,
)

LAGO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

PROFILE = {
    "name": "Acme Cloud SAS",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "email": "billing@acme.example",
    "phone": "+33 1 23 45 67 89",
    "url": "https://acme.example",
    "logo_url": "https://acme.example/logo.png",
    "legal_name": "Acme Cloud SAS",
    "legal_number": "FR123456789",
    "tax_identification_number": "FR40123456789",
    "address_line1": "5 rue de la Paix",
    "address_line2": "Bâtiment B",
    "city": "Paris",
    "state": "Île-de-France",
    "zipcode": "75002",
    "country": "FR",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "customer_type": "company",
    "net_payment_term": 30,
    "finalize_zero_amount_invoice": "skip",
}


def full_customer(external_id, tax_code):
    return Customer(
        external_id=external_id,
        **PROFILE,
        billing_configuration=CustomerBillingConfiguration(
            invoice_grace_period=3,
            payment_provider="stripe",
            payment_provider_code="stripe_eu",
            provider_customer_id="cus_12345",
            sync=True,
            sync_with_provider=False,
            document_locale="fr",
            provider_payment_methods=["card", "sepa_debit"],
        ),
        shipping_address=Address(
            address_line1="1 Quay Street",
            address_line2="Unit 4",
            city="Dublin",
            state="Leinster",
            zipcode="D02",
            country="IE",
        ),
        metadata=MetadataList(
            __root__=[
                Metadata(key="crm_id", value="0015g00000XyZ", display_in_invoice=False),
                Metadata(key="purchase_order", value="PO-2024-17", display_in_invoice=True),
            ]
        ),
        tax_codes=[tax_code],
    )


def test_a_created_customer_comes_back_from_find_with_every_field_as_sent(client, unique):
    # Given a tax the customer will refer to by code
    tax = client.taxes.create(Tax(name="French VAT", code=unique("vat"), rate=20))
    external_id = unique("acme")

    # When a customer is created with every field Lago documents
    created = client.customers.create(full_customer(external_id, tax.code))

    # Then each field comes back as sent
    assert uuid.UUID(created.lago_id)
    assert created.external_id == external_id
    assert {field: getattr(created, field) for field in PROFILE} == PROFILE
    assert created.applicable_timezone == "Europe/Paris"
    assert LAGO_TIMESTAMP.match(created.created_at), created.created_at
    assert LAGO_TIMESTAMP.match(created.updated_at), created.updated_at
    billing = created.billing_configuration
    assert (billing.invoice_grace_period, billing.document_locale) == (3, "fr")
    assert (billing.payment_provider, billing.payment_provider_code, billing.provider_customer_id) == (
        "stripe",
        "stripe_eu",
        "cus_12345",
    )
    assert (billing.sync, billing.sync_with_provider) == (True, False)
    assert billing.provider_payment_methods == ["card", "sepa_debit"]
    assert created.shipping_address == Address(
        address_line1="1 Quay Street",
        address_line2="Unit 4",
        city="Dublin",
        state="Leinster",
        zipcode="D02",
        country="IE",
    )
    assert [(m.key, m.value, m.display_in_invoice) for m in created.metadata.__root__] == [
        ("crm_id", "0015g00000XyZ", False),
        ("purchase_order", "PO-2024-17", True),
    ]
    assert all(m.lago_id for m in created.metadata.__root__)
    # And the tax code is resolved to the tax itself
    assert [(t.lago_id, t.code, t.rate) for t in created.taxes.__root__] == [(tax.lago_id, tax.code, 20.0)]
    # And find returns the very same customer
    assert client.customers.find(external_id) == created


def test_a_customer_with_only_an_external_id_gets_lagos_defaults(client, unique):
    external_id = unique("minimal")

    created = client.customers.create(Customer(external_id=external_id))

    assert created.external_id == external_id
    assert (created.name, created.currency, created.timezone, created.email) == (None, None, None, None)
    assert created.finalize_zero_amount_invoice == "inherit"
    assert created.taxes.__root__ == []
    assert created.metadata.__root__ == []


def test_creating_again_with_the_same_external_id_updates_the_sent_fields_and_keeps_the_others(client, unique):
    tax = client.taxes.create(Tax(name="French VAT", code=unique("vat"), rate=20))
    external_id = unique("acme")
    created = client.customers.create(full_customer(external_id, tax.code))

    # When the same external_id is created again with a new name and city only
    upserted = client.customers.create(Customer(external_id=external_id, name="Acme Europe", city="Lyon"))

    # Then it is the same customer, with those two fields changed
    assert (upserted.lago_id, upserted.created_at) == (created.lago_id, created.created_at)
    assert (upserted.name, upserted.city) == ("Acme Europe", "Lyon")
    # And every field that was not sent is kept
    kept = {field: value for field, value in PROFILE.items() if field not in ("name", "city")}
    assert {field: getattr(upserted, field) for field in kept} == kept
    assert upserted.billing_configuration == created.billing_configuration
    assert upserted.shipping_address == created.shipping_address
    assert [(m.key, m.value) for m in upserted.metadata.__root__] == [
        (m.key, m.value) for m in created.metadata.__root__
    ]
    assert [t.code for t in upserted.taxes.__root__] == [tax.code]
    # And there is still one customer with that external_id, as find shows
    assert client.customers.find(external_id) == upserted


def test_an_upsert_can_replace_the_taxes_and_a_nested_field(client, unique):
    vat, reduced = (client.taxes.create(Tax(name=n, code=unique("tax"), rate=r)) for n, r in (("VAT", 20), ("Reduced", 5.5)))
    external_id = unique("acme")
    client.customers.create(full_customer(external_id, vat.code))

    # When the upsert sends other tax codes and one shipping address field
    upserted = client.customers.create(
        Customer(external_id=external_id, tax_codes=[reduced.code], shipping_address=Address(city="Cork"))
    )

    # Then the taxes are replaced and only that nested field changed
    assert [(t.code, t.rate) for t in upserted.taxes.__root__] == [(reduced.code, 5.5)]
    assert (upserted.shipping_address.city, upserted.shipping_address.address_line1) == ("Cork", "1 Quay Street")


def test_destroy_returns_the_customer_and_then_it_is_not_found(client, unique):
    external_id = unique("acme")
    created = client.customers.create(Customer(external_id=external_id, name="Acme"))

    destroyed = client.customers.destroy(external_id)

    assert (destroyed.lago_id, destroyed.external_id) == (created.lago_id, external_id)
    with pytest.raises(LagoApiError) as caught:
        client.customers.find(external_id)
    assert caught.value.status_code == 404
    assert caught.value.response == {"status": 404, "error": "Not Found", "code": "customer_not_found"}


def test_pages_of_a_list_follow_lagos_meta_without_overlap_or_gap(fresh_client, unique, all_pages, expected_metas):
    # Given six customers in an organization of their own
    external_ids = {
        fresh_client.customers.create(Customer(external_id=unique(f"c{i}"), name=f"Customer {i}")).external_id
        for i in range(6)
    }

    # When the list is read four at a time
    pages = all_pages(fresh_client.customers, "customers", per_page=4)

    # Then Lago's meta describes two pages of 4 and 2
    assert [meta for _, meta in pages] == expected_metas(total_count=6, per_page=4)
    assert [len(items) for items, _ in pages] == [4, 2]
    # And together they hold every customer exactly once
    listed = [customer.external_id for items, _ in pages for customer in items]
    assert sorted(listed) == sorted(external_ids)


def test_a_customer_without_a_timezone_applies_the_organizations(fresh_client, unique):
    # Given an organization billing in New York time
    fresh_client.organizations.update(Organization(default_currency="USD", timezone="America/New_York"))
    external_id = unique("acme")

    # When a customer without a timezone is created
    created = fresh_client.customers.create(Customer(external_id=external_id))

    # Then the organization's timezone applies to it
    assert (created.timezone, created.applicable_timezone) == (None, "America/New_York")


@pytest.mark.parametrize(
    ("fields", "error_details"),
    [
        pytest.param({"currency": "XYZ"}, {"currency": ["value_is_invalid"]}, id="an unknown currency"),
        pytest.param({"currency": "eur"}, {"currency": ["value_is_invalid"]}, id="a lower-case currency"),
        pytest.param({"timezone": "Mars/Olympus"}, {"timezone": ["invalid_timezone"]}, id="an unknown timezone"),
        pytest.param({"email": "not-an-email"}, {"email": ["invalid_email_format"]}, id="a malformed email"),
        pytest.param({"country": "France"}, {"country": ["not_a_valid_country_code"]}, id="a country name"),
        pytest.param({"country": "ZZ"}, {"country": ["not_a_valid_country_code"]}, id="an unassigned country code"),
        pytest.param(
            {"finalize_zero_amount_invoice": "sometimes"},
            {"finalize_zero_amount_invoice": ["value_is_invalid"]},
            id="an unknown zero amount policy",
        ),
        pytest.param(
            {"billing_configuration": CustomerBillingConfiguration(document_locale="klingon")},
            {"document_locale": ["invalid_value"]},
            id="an unknown document locale",
        ),
    ],
)
def test_an_invalid_customer_is_refused_with_field_keyed_details(client, unique, fields, error_details):
    external_id = unique("bad")

    with pytest.raises(LagoApiError) as caught:
        client.customers.create(Customer(external_id=external_id, **fields))

    assert caught.value.status_code == 422
    assert caught.value.response == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": error_details,
    }
    # And nothing was written
    with pytest.raises(LagoApiError) as missing:
        client.customers.find(external_id)
    assert missing.value.status_code == 404


def test_a_refused_upsert_changes_nothing(client, unique):
    external_id = unique("acme")
    created = client.customers.create(Customer(external_id=external_id, currency="EUR", name="Acme"))

    with pytest.raises(LagoApiError) as caught:
        client.customers.create(Customer(external_id=external_id, name="Renamed", timezone="Nowhere/City"))

    assert caught.value.status_code == 422
    assert client.customers.find(external_id) == created


def test_an_unknown_tax_code_is_tax_not_found_and_creates_nothing(client, unique):
    external_id = unique("acme")

    with pytest.raises(LagoApiError) as caught:
        client.customers.create(Customer(external_id=external_id, tax_codes=[unique("no_such_tax")]))

    assert caught.value.status_code == 404
    assert caught.value.response["code"] == "tax_not_found"
    with pytest.raises(LagoApiError) as missing:
        client.customers.find(external_id)
    assert missing.value.response["code"] == "customer_not_found"


@pytest.mark.parametrize("operation", ["find", "destroy"])
def test_an_unknown_external_id_is_customer_not_found(client, unique, operation):
    external_id = unique("missing")

    with pytest.raises(LagoApiError) as caught:
        getattr(client.customers, operation)(external_id)

    assert caught.value.status_code == 404
    assert caught.value.response == {"status": 404, "error": "Not Found", "code": "customer_not_found"}
