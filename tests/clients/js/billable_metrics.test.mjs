/**
 * lago-javascript-client's `billableMetrics` works against our API unchanged: create, find,
 * list with page pagination, update, destroy, with every field of Lago's wire types round
 * tripping, and Lago's 404/422 errors reaching the caller through the client's thrown response
 * and `getLagoError`.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  LAGO_TIMESTAMP,
  UUID,
  allPages,
  expectedMetas,
  failureOf,
  freshLago,
  lago,
  unique,
} from './stack.mjs';

function storageMetric(code, overrides = {}) {
  return {
    billable_metric: {
      name: 'Storage',
      code,
      description: 'GB stored, summed over the period',
      aggregation_type: 'sum_agg',
      field_name: 'gb',
      recurring: true,
      rounding_function: 'ceil',
      rounding_precision: 1,
      filters: [
        { key: 'region', values: ['us-east-1', 'eu-west-1'] },
        { key: 'tier', values: ['hot', 'cold'] },
      ],
      ...overrides,
    },
  };
}

test('a created metric comes back from find with every field as sent and of Lago type', async () => {
  const client = lago();
  const code = unique('storage');

  // When a metric with every optional field is created
  const { data: created } = await client.billableMetrics.createBillableMetric(storageMetric(code));

  // Then the response has Lago's root key and each field as sent
  const metric = created.billable_metric;
  assert.match(metric.lago_id, UUID);
  assert.match(metric.created_at, LAGO_TIMESTAMP);
  assert.deepEqual(
    {
      name: metric.name,
      code: metric.code,
      description: metric.description,
      aggregation_type: metric.aggregation_type,
      field_name: metric.field_name,
      recurring: metric.recurring,
      rounding_function: metric.rounding_function,
      rounding_precision: metric.rounding_precision,
      weighted_interval: metric.weighted_interval,
      expression: metric.expression,
      filters: metric.filters,
    },
    {
      ...storageMetric(code).billable_metric,
      weighted_interval: null,
      expression: null,
    },
  );
  // And find returns the very same body
  const { data: found } = await client.billableMetrics.findBillableMetric(code);
  assert.deepEqual(found, created);
});

test('update changes the sent fields and keeps the others', async () => {
  const client = lago();
  const code = unique('storage');
  const { data: created } = await client.billableMetrics.createBillableMetric(storageMetric(code));

  // When the description is cleared and the name changed
  const { data: updated } = await client.billableMetrics.updateBillableMetric(code, {
    billable_metric: { name: 'Hot storage', description: null },
  });

  // Then exactly those two fields changed
  assert.deepEqual(updated.billable_metric, {
    ...created.billable_metric,
    name: 'Hot storage',
    description: null,
  });
  const { data: found } = await client.billableMetrics.findBillableMetric(code);
  assert.deepEqual(found, updated);
});

test('destroy returns the metric and then find is billable_metric_not_found', async () => {
  const client = lago();
  const code = unique('storage');
  const { data: created } = await client.billableMetrics.createBillableMetric(storageMetric(code));

  const { data: destroyed } = await client.billableMetrics.destroyBillableMetric(code);

  assert.equal(destroyed.billable_metric.lago_id, created.billable_metric.lago_id);
  const failure = await failureOf(client.billableMetrics.findBillableMetric(code));
  assert.deepEqual(failure, {
    status: 404,
    body: { status: 404, error: 'Not Found', code: 'billable_metric_not_found' },
  });
});

test('pages of a list follow Lago meta and together hold every metric once', async () => {
  // Given five metrics in an organization of their own
  const client = await freshLago();
  const codes = [];
  for (let i = 0; i < 5; i += 1) {
    const { data } = await client.billableMetrics.createBillableMetric({
      billable_metric: { name: `Metric ${i}`, code: unique(`m${i}`), aggregation_type: 'count_agg' },
    });
    codes.push(data.billable_metric.code);
  }

  // When the list is read two at a time
  const pages = await allPages(client.billableMetrics.findAllBillableMetrics, 'billable_metrics', 2);

  // Then Lago's meta describes pages of 2, 2 and 1 that hold every metric exactly once
  assert.deepEqual(
    pages.map((page) => page.meta),
    expectedMetas(5, 2),
  );
  assert.deepEqual(
    pages.map((page) => page.items.length),
    [2, 2, 1],
  );
  const listed = pages.flatMap((page) => page.items.map((metric) => metric.code));
  assert.deepEqual(listed.toSorted(), codes.toSorted());
});

test('an invalid metric is refused with 422 and field-keyed error details', async (t) => {
  const client = lago();
  const cases = [
    ['an unknown aggregation type', { aggregation_type: 'median_agg' }, { aggregation_type: ['value_is_invalid'] }],
    ['a sum without a field name', { field_name: null }, { field_name: ['value_is_mandatory'] }],
    ['a missing name', { name: undefined }, { name: ['value_is_mandatory'] }],
    ['a filter without values', { filters: [{ key: 'region', values: [] }] }, { filters: ['invalid_values'] }],
    ['a name of the wrong JSON type', { name: 42 }, { name: ['value_is_invalid'] }],
  ];
  for (const [name, overrides, errorDetails] of cases) {
    await t.test(name, async () => {
      const code = unique('invalid');

      const failure = await failureOf(client.billableMetrics.createBillableMetric(storageMetric(code, overrides)));

      assert.deepEqual(failure, {
        status: 422,
        body: {
          status: 422,
          error: 'Unprocessable Entity',
          code: 'validation_errors',
          error_details: errorDetails,
        },
      });
      // And nothing was written
      assert.equal((await failureOf(client.billableMetrics.findBillableMetric(code))).status, 404);
    });
  }
});

test('a second metric with the same code is refused with value_already_exist', async () => {
  const client = lago();
  const code = unique('storage');
  await client.billableMetrics.createBillableMetric(storageMetric(code));

  const failure = await failureOf(
    client.billableMetrics.createBillableMetric(storageMetric(code, { name: 'Duplicate' })),
  );

  assert.equal(failure.status, 422);
  assert.equal(failure.body.code, 'validation_errors');
  assert.deepEqual(failure.body.error_details, { code: ['value_already_exist'] });
  const { data: found } = await client.billableMetrics.findBillableMetric(code);
  assert.equal(found.billable_metric.name, 'Storage');
});

test('an unknown code is billable_metric_not_found for find, update and destroy', async () => {
  const client = lago();
  const code = unique('missing');
  const calls = [
    () => client.billableMetrics.findBillableMetric(code),
    () => client.billableMetrics.updateBillableMetric(code, { billable_metric: { name: 'x' } }),
    () => client.billableMetrics.destroyBillableMetric(code),
  ];

  for (const call of calls) {
    assert.deepEqual(await failureOf(call()), {
      status: 404,
      body: { status: 404, error: 'Not Found', code: 'billable_metric_not_found' },
    });
  }
});
