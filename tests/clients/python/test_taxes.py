"""lago-python-client's `taxes` works against our API unchanged: create (the client sends the
rate as a float), find, list with page pagination, update, destroy, and Lago's 404/422 errors
arriving as the client's `LagoApiError`."""

import re
import uuid

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import Tax

LAGO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def test_a_created_tax_comes_back_from_find_exactly_as_it_was_sent(client, unique):
    code = unique("vat")

    # When a tax is created with a fractional rate
    created = client.taxes.create(Tax(name="French VAT", code=code, rate=20.5, description="Standard rate"))

    # Then every field comes back as sent, the rate as the same number
    assert uuid.UUID(created.lago_id)
    assert LAGO_TIMESTAMP.match(created.created_at), created.created_at
    assert (created.name, created.code, created.rate, created.description) == (
        "French VAT",
        code,
        20.5,
        "Standard rate",
    )
    assert created.applied_to_organization is False
    # And find returns the very same tax
    assert client.taxes.find(code) == created


@pytest.mark.parametrize(
    ("rate_sent", "rate_returned"),
    [
        pytest.param(20, 20.0, id="a whole rate"),
        pytest.param("5.5", 5.5, id="a decimal string, as Lago documents it"),
        pytest.param(12.345, 12.345, id="three decimals"),
        pytest.param(0, 0.0, id="zero"),
        pytest.param(100, 100.0, id="one hundred"),
    ],
)
def test_a_rate_round_trips_exactly(client, unique, rate_sent, rate_returned):
    code = unique("tax")

    created = client.taxes.create(Tax(name="Tax", code=code, rate=rate_sent))

    assert created.rate == rate_returned
    assert client.taxes.find(code).rate == rate_returned


def test_update_changes_the_sent_fields_and_keeps_the_others(client, unique):
    code = unique("vat")
    created = client.taxes.create(Tax(name="VAT", code=code, rate=20, description="Standard rate"))

    # When only the rate and the name are updated
    updated = client.taxes.update(Tax(name="Reduced VAT", rate=5.5), code)

    # Then they changed, and the description and identity stayed
    assert (updated.name, updated.rate) == ("Reduced VAT", 5.5)
    assert (updated.lago_id, updated.code, updated.description, updated.created_at) == (
        created.lago_id,
        code,
        "Standard rate",
        created.created_at,
    )
    assert client.taxes.find(code) == updated


def test_destroy_returns_the_tax_and_then_it_is_not_found(client, unique):
    code = unique("vat")
    created = client.taxes.create(Tax(name="VAT", code=code, rate=20))

    destroyed = client.taxes.destroy(code)

    assert destroyed.lago_id == created.lago_id
    with pytest.raises(LagoApiError) as caught:
        client.taxes.find(code)
    assert caught.value.status_code == 404
    assert caught.value.response["code"] == "tax_not_found"


def test_pages_of_a_list_follow_lagos_meta_without_overlap_or_gap(fresh_client, unique, all_pages, expected_metas):
    # Given seven taxes in an organization of their own
    codes = {fresh_client.taxes.create(Tax(name=f"Tax {i}", code=unique(f"t{i}"), rate=i)).code for i in range(7)}

    # When the list is read three at a time
    pages = all_pages(fresh_client.taxes, "taxes", per_page=3)

    # Then Lago's meta describes three pages of 3, 3 and 1
    assert [meta for _, meta in pages] == expected_metas(total_count=7, per_page=3)
    assert [len(items) for items, _ in pages] == [3, 3, 1]
    # And together they hold every tax exactly once
    listed = [tax.code for items, _ in pages for tax in items]
    assert sorted(listed) == sorted(codes)


@pytest.mark.parametrize(
    ("fields", "error_details"),
    [
        pytest.param({"rate": 100.01}, {"rate": ["value_is_invalid"]}, id="a rate above 100"),
        pytest.param({"rate": -1}, {"rate": ["value_is_invalid"]}, id="a negative rate"),
        pytest.param({"rate": None}, {"rate": ["value_is_mandatory"]}, id="no rate"),
        pytest.param({"name": None}, {"name": ["value_is_mandatory"]}, id="no name"),
    ],
)
def test_an_invalid_tax_is_refused_with_field_keyed_details(client, unique, fields, error_details):
    code = unique("bad_tax")

    with pytest.raises(LagoApiError) as caught:
        client.taxes.create(Tax(**{"name": "VAT", "code": code, "rate": 20, **fields}))

    assert caught.value.status_code == 422
    assert caught.value.response == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": error_details,
    }
    with pytest.raises(LagoApiError) as missing:
        client.taxes.find(code)
    assert missing.value.status_code == 404


def test_a_second_tax_with_the_same_code_is_refused(client, unique):
    code = unique("vat")
    client.taxes.create(Tax(name="VAT", code=code, rate=20))

    with pytest.raises(LagoApiError) as caught:
        client.taxes.create(Tax(name="Other VAT", code=code, rate=10))

    assert caught.value.status_code == 422
    assert caught.value.response["error_details"] == {"code": ["value_already_exist"]}
    assert client.taxes.find(code).rate == 20


def test_an_update_to_an_invalid_rate_is_refused_and_changes_nothing(client, unique):
    code = unique("vat")
    created = client.taxes.create(Tax(name="VAT", code=code, rate=20))

    with pytest.raises(LagoApiError) as caught:
        client.taxes.update(Tax(rate=250), code)

    assert caught.value.status_code == 422
    assert caught.value.response["error_details"] == {"rate": ["value_is_invalid"]}
    assert client.taxes.find(code) == created


@pytest.mark.parametrize("operation", ["find", "update", "destroy"])
def test_an_unknown_code_is_tax_not_found(client, unique, operation):
    code = unique("missing")
    calls = {
        "find": lambda: client.taxes.find(code),
        "update": lambda: client.taxes.update(Tax(rate=10), code),
        "destroy": lambda: client.taxes.destroy(code),
    }

    with pytest.raises(LagoApiError) as caught:
        calls[operation]()

    assert caught.value.status_code == 404
    assert caught.value.response == {"status": 404, "error": "Not Found", "code": "tax_not_found"}
