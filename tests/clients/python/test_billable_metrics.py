"""lago-python-client's `billable_metrics` works against our API unchanged: create, find, list
with page pagination, update (fields and code), destroy, and Lago's 404/422 errors arriving as
the client's `LagoApiError` with Lago's `code` and field-keyed `error_details`."""

import re
import uuid

import pytest
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import BillableMetric, BillableMetricFilter, BillableMetricFilters

LAGO_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def storage_metric(code, **overrides):
    fields = {
        "name": "Storage",
        "code": code,
        "description": "GB stored, summed over the period",
        "aggregation_type": "sum_agg",
        "field_name": "gb",
        "recurring": True,
        "rounding_function": "round",
        "rounding_precision": 2,
        "filters": BillableMetricFilters(
            __root__=[
                BillableMetricFilter(key="region", values=["us-east-1", "eu-west-1"]),
                BillableMetricFilter(key="tier", values=["hot", "cold"]),
            ]
        ),
    }
    fields.update(overrides)
    return BillableMetric(**fields)


def test_a_created_metric_comes_back_from_find_exactly_as_it_was_sent(client, unique):
    code = unique("storage")

    # When a metric with every optional field is created
    created = client.billable_metrics.create(storage_metric(code))

    # Then the response carries each field as sent, a Lago id and a Lago timestamp
    assert uuid.UUID(created.lago_id)
    assert LAGO_TIMESTAMP.match(created.created_at), created.created_at
    assert (created.name, created.code, created.description) == (
        "Storage",
        code,
        "GB stored, summed over the period",
    )
    assert (created.aggregation_type, created.field_name, created.recurring) == ("sum_agg", "gb", True)
    assert (created.rounding_function, created.rounding_precision) == ("round", 2)
    assert created.weighted_interval is None
    assert [(f.key, f.values) for f in created.filters.__root__] == [
        ("region", ["us-east-1", "eu-west-1"]),
        ("tier", ["hot", "cold"]),
    ]
    # And find returns the very same object
    assert client.billable_metrics.find(code) == created


def test_a_count_metric_needs_no_field_name_and_defaults_to_not_recurring(client, unique):
    code = unique("api_calls")

    # When only the required fields are sent
    created = client.billable_metrics.create(
        BillableMetric(name="API calls", code=code, aggregation_type="count_agg")
    )

    # Then the optional fields come back with Lago's defaults
    assert (created.recurring, created.field_name, created.description) == (False, None, None)
    assert created.filters.__root__ == []


def test_a_weighted_sum_metric_keeps_its_weighted_interval(client, unique):
    code = unique("seats")

    created = client.billable_metrics.create(
        BillableMetric(
            name="Seats",
            code=code,
            aggregation_type="weighted_sum_agg",
            field_name="seats",
            weighted_interval="seconds",
        )
    )

    assert (created.aggregation_type, created.weighted_interval) == ("weighted_sum_agg", "seconds")
    assert client.billable_metrics.find(code).weighted_interval == "seconds"


def test_update_changes_the_sent_fields_and_keeps_the_others(client, unique):
    code = unique("storage")
    created = client.billable_metrics.create(storage_metric(code))

    # When only the name, the aggregation and the filters are updated
    updated = client.billable_metrics.update(
        BillableMetric(
            name="Peak storage",
            aggregation_type="max_agg",
            recurring=False,
            filters=BillableMetricFilters(__root__=[BillableMetricFilter(key="region", values=["ap-south-1"])]),
        ),
        code,
    )

    # Then those fields changed, every other field and the identity stayed
    assert (updated.name, updated.aggregation_type) == ("Peak storage", "max_agg")
    assert [(f.key, f.values) for f in updated.filters.__root__] == [("region", ["ap-south-1"])]
    assert (updated.lago_id, updated.code, updated.created_at) == (created.lago_id, code, created.created_at)
    assert (updated.description, updated.field_name) == (created.description, "gb")
    assert (updated.rounding_function, updated.rounding_precision) == ("round", 2)
    # And a later find sees the update
    assert client.billable_metrics.find(code) == updated


def test_update_can_change_the_code_which_then_identifies_the_metric(client, unique):
    old_code, new_code = unique("storage"), unique("storage_v2")
    created = client.billable_metrics.create(storage_metric(old_code))

    # When the code itself is updated
    updated = client.billable_metrics.update(BillableMetric(code=new_code), old_code)

    # Then the metric is found under its new code only
    assert (updated.lago_id, updated.code) == (created.lago_id, new_code)
    assert client.billable_metrics.find(new_code).lago_id == created.lago_id
    with pytest.raises(LagoApiError) as caught:
        client.billable_metrics.find(old_code)
    assert caught.value.status_code == 404


def test_a_code_with_spaces_and_accents_travels_in_the_path(client, unique):
    # Lago allows any character but "/" in a code; the client puts it in the URL unencoded
    code = unique("stockage réservé")

    created = client.billable_metrics.create(BillableMetric(name="Stockage", code=code, aggregation_type="count_agg"))

    assert client.billable_metrics.find(code) == created
    assert client.billable_metrics.update(BillableMetric(name="Renommé"), code).name == "Renommé"
    assert client.billable_metrics.destroy(code).code == code


def test_destroy_returns_the_metric_and_then_it_is_not_found(client, unique):
    code = unique("storage")
    created = client.billable_metrics.create(storage_metric(code))

    # When the metric is destroyed
    destroyed = client.billable_metrics.destroy(code)

    # Then the response is the deleted metric, and it is gone
    assert destroyed.lago_id == created.lago_id
    with pytest.raises(LagoApiError) as caught:
        client.billable_metrics.find(code)
    assert caught.value.status_code == 404
    assert caught.value.response["code"] == "billable_metric_not_found"


def test_pages_of_a_list_follow_lagos_meta_without_overlap_or_gap(fresh_client, unique, all_pages, expected_metas):
    # Given five metrics in an organization of their own
    codes = {
        fresh_client.billable_metrics.create(
            BillableMetric(name=f"Metric {i}", code=unique(f"m{i}"), aggregation_type="count_agg")
        ).code
        for i in range(5)
    }

    # When the list is read two at a time
    pages = all_pages(fresh_client.billable_metrics, "billable_metrics", per_page=2)

    # Then there are three pages with Lago's meta, sizes 2, 2, 1
    assert [meta for _, meta in pages] == expected_metas(total_count=5, per_page=2)
    assert [len(items) for items, _ in pages] == [2, 2, 1]
    # And together they hold every metric exactly once
    listed = [metric.code for items, _ in pages for metric in items]
    assert sorted(listed) == sorted(codes)
    # And one page of the default size holds them all
    everything = fresh_client.billable_metrics.find_all()
    assert {metric.code for metric in everything["billable_metrics"]} == codes
    assert everything["meta"] == expected_metas(total_count=5, per_page=100)[0]


def test_a_page_past_the_end_is_empty(fresh_client, unique):
    fresh_client.billable_metrics.create(
        BillableMetric(name="Only", code=unique("only"), aggregation_type="count_agg")
    )

    response = fresh_client.billable_metrics.find_all({"page": 3, "per_page": 1})

    assert response["billable_metrics"] == []
    assert (response["meta"]["total_count"], response["meta"]["next_page"]) == (1, None)


def test_an_empty_list_has_lagos_zero_meta(fresh_client):
    response = fresh_client.billable_metrics.find_all({"per_page": 10})

    assert response["billable_metrics"] == []
    assert response["meta"] == {
        "current_page": 0,
        "next_page": None,
        "prev_page": None,
        "total_pages": 0,
        "total_count": 0,
    }


@pytest.mark.parametrize(
    ("overrides", "error_details"),
    [
        pytest.param(
            {"aggregation_type": "median_agg"},
            {"aggregation_type": ["value_is_invalid"]},
            id="an unknown aggregation type",
        ),
        pytest.param({"field_name": None}, {"field_name": ["value_is_mandatory"]}, id="a sum without a field name"),
        pytest.param({"name": None}, {"name": ["value_is_mandatory"]}, id="a missing name"),
        pytest.param(
            {"rounding_function": "truncate"},
            {"rounding_function": ["value_is_invalid"]},
            id="an unknown rounding function",
        ),
        pytest.param(
            {"aggregation_type": "count_agg", "field_name": None},
            {"recurring": ["not_compatible_with_aggregation_type"]},
            id="a recurring count",
        ),
    ],
)
def test_an_invalid_metric_is_refused_with_field_keyed_details(client, unique, overrides, error_details):
    code = unique("invalid")

    with pytest.raises(LagoApiError) as caught:
        client.billable_metrics.create(storage_metric(code, **overrides))

    assert caught.value.status_code == 422
    assert caught.value.response == {
        "status": 422,
        "error": "Unprocessable Entity",
        "code": "validation_errors",
        "error_details": error_details,
    }
    # And nothing was written
    with pytest.raises(LagoApiError) as missing:
        client.billable_metrics.find(code)
    assert missing.value.status_code == 404


def test_a_second_metric_with_the_same_code_is_refused(client, unique):
    code = unique("storage")
    client.billable_metrics.create(storage_metric(code))

    with pytest.raises(LagoApiError) as caught:
        client.billable_metrics.create(storage_metric(code, name="Duplicate"))

    assert caught.value.status_code == 422
    assert caught.value.response["code"] == "validation_errors"
    assert caught.value.response["error_details"] == {"code": ["value_already_exist"]}
    # And the first metric is untouched
    assert client.billable_metrics.find(code).name == "Storage"


def test_an_update_to_an_invalid_definition_is_refused_and_changes_nothing(client, unique):
    code = unique("storage")
    created = client.billable_metrics.create(storage_metric(code))

    with pytest.raises(LagoApiError) as caught:
        client.billable_metrics.update(BillableMetric(aggregation_type="bogus_agg"), code)

    assert caught.value.status_code == 422
    assert caught.value.response["error_details"] == {"aggregation_type": ["value_is_invalid"]}
    assert client.billable_metrics.find(code) == created


@pytest.mark.parametrize("operation", ["find", "update", "destroy"])
def test_an_unknown_code_is_billable_metric_not_found(client, unique, operation):
    code = unique("missing")
    calls = {
        "find": lambda: client.billable_metrics.find(code),
        "update": lambda: client.billable_metrics.update(BillableMetric(name="x"), code),
        "destroy": lambda: client.billable_metrics.destroy(code),
    }

    with pytest.raises(LagoApiError) as caught:
        calls[operation]()

    assert caught.value.status_code == 404
    assert caught.value.response == {"status": 404, "error": "Not Found", "code": "billable_metric_not_found"}
