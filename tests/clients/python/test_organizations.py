"""lago-python-client's `organizations.update` works against our API unchanged: every documented
setting is stored and returned, a later partial update keeps what it does not send, and
invalid settings are refused with Lago's 422. Each test uses an organization of its own, so
changing settings cannot disturb tests running beside it."""

import re

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Organization, OrganizationBillingConfiguration

LAGO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")

SETTINGS = {
    "webhook_url": "https://hooks.acme.example/lago",
    "country": "FR",
    "default_currency": "EUR",
    "address_line1": "5 rue de la Paix",
    "address_line2": "Bâtiment B",
    "state": "Île-de-France",
    "zipcode": "75002",
    "email": "billing@acme.example",
    "city": "Paris",
    "legal_name": "Acme Cloud SAS",
    "legal_number": "FR123456789",
    "document_numbering": "per_organization",
    "document_number_prefix": "ACME",
    "net_payment_term": 15,
    "tax_identification_number": "FR40123456789",
    "timezone": "Europe/Paris",
    "email_settings": ["invoice.finalized", "credit_note.created"],
    "finalize_zero_amount_invoice": False,
}


def test_every_setting_sent_is_stored_and_returned(fresh_client):
    # When every documented setting is updated
    updated = fresh_client.organizations.update(
        Organization(
            **SETTINGS,
            billing_configuration=OrganizationBillingConfiguration(
                invoice_footer="Thank you for your business",
                invoice_grace_period=5,
                document_locale="fr",
            ),
        )
    )

    # Then the response carries each of them
    assert {field: getattr(updated, field) for field in SETTINGS if field != "default_currency"} == {
        field: value for field, value in SETTINGS.items() if field != "default_currency"
    }
    assert updated.webhook_urls == ["https://hooks.acme.example/lago"]
    assert updated.billing_configuration == OrganizationBillingConfiguration(
        invoice_footer="Thank you for your business",
        invoice_grace_period=5,
        document_locale="fr",
    )
    assert updated.name.startswith("Fresh ")
    assert LAGO_TIMESTAMP.match(updated.created_at), updated.created_at

    # And reading back through a later update that sends only the currency shows them stored
    read_back = fresh_client.organizations.update(Organization(default_currency="EUR"))
    assert read_back == updated


def test_a_partial_update_changes_only_what_it_sends(fresh_client):
    fresh_client.organizations.update(
        Organization(default_currency="EUR", city="Paris", legal_name="Acme Cloud SAS", net_payment_term=30)
    )

    # When only the city and the currency are sent
    updated = fresh_client.organizations.update(Organization(default_currency="USD", city="Lyon"))

    # Then those changed and the rest stayed
    assert (updated.city, updated.legal_name, updated.net_payment_term) == ("Lyon", "Acme Cloud SAS", 30)


@pytest.mark.parametrize(
    ("fields", "error_details"),
    [
        pytest.param({"timezone": "Mars/Olympus"}, {"timezone": ["invalid_timezone"]}, id="an unknown timezone"),
        pytest.param({"default_currency": "XYZ"}, {"default_currency": ["value_is_invalid"]}, id="an unknown currency"),
        pytest.param({"country": "France"}, {"country": ["not_a_valid_country_code"]}, id="a country name"),
        pytest.param(
            {"document_numbering": "per_planet"},
            {"document_numbering": ["value_is_invalid"]},
            id="an unknown numbering",
        ),
    ],
)
def test_an_invalid_setting_is_refused_and_changes_nothing(fresh_client, fields, error_details):
    before = fresh_client.organizations.update(Organization(default_currency="EUR", city="Paris"))

    with pytest.raises(LagoApiError) as caught:
        fresh_client.organizations.update(Organization(**{"default_currency": "EUR", "city": "Lyon", **fields}))

    assert caught.value.status_code == 422
    assert caught.value.response == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": error_details,
    }
    assert fresh_client.organizations.update(Organization(default_currency="EUR")) == before
