/**
 * Two organizations, each through lago-javascript-client with its own API key, cannot read,
 * list, update or destroy each other's billable metrics, customers or taxes (404 with Lago's
 * code; absent from lists), and the same code lives independently in both.
 */

import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import { clientFor, createOrganization, failureOf, lago, unique } from './stack.mjs';

let mine;
let theirs;

before(async () => {
  mine = lago();
  theirs = clientFor(await createOrganization(`Other ${unique('org')}`));
});

async function listed(findAll, resource, key) {
  const keys = [];
  let page = 1;
  while (page !== null && page !== undefined) {
    const { data } = await findAll({ page, per_page: 100 });
    keys.push(...data[resource].map((item) => item[key]));
    page = data.meta.next_page;
  }
  return keys;
}

async function assertNotFound(call, code) {
  assert.deepEqual(await failureOf(call()), { status: 404, body: { status: 404, error: 'Not Found', code } });
}

test('another organization cannot read, list, update or destroy a billable metric', async () => {
  const code = unique('storage');
  const { data: created } = await mine.billableMetrics.createBillableMetric({
    billable_metric: { name: 'Storage', code, aggregation_type: 'sum_agg', field_name: 'gb' },
  });

  await assertNotFound(() => theirs.billableMetrics.findBillableMetric(code), 'billable_metric_not_found');
  await assertNotFound(
    () => theirs.billableMetrics.updateBillableMetric(code, { billable_metric: { name: 'Hijacked' } }),
    'billable_metric_not_found',
  );
  await assertNotFound(() => theirs.billableMetrics.destroyBillableMetric(code), 'billable_metric_not_found');
  assert.ok(!(await listed(theirs.billableMetrics.findAllBillableMetrics, 'billable_metrics', 'code')).includes(code));

  // The owner's metric is untouched
  assert.deepEqual((await mine.billableMetrics.findBillableMetric(code)).data, created);
});

test('another organization cannot read, list, update or destroy a tax', async () => {
  const code = unique('vat');
  const { data: created } = await mine.taxes.createTax({ tax: { name: 'VAT', code, rate: '20' } });

  await assertNotFound(() => theirs.taxes.findTax(code), 'tax_not_found');
  await assertNotFound(() => theirs.taxes.updateTax(code, { tax: { rate: '1' } }), 'tax_not_found');
  await assertNotFound(() => theirs.taxes.destroyTax(code), 'tax_not_found');
  assert.ok(!(await listed(theirs.taxes.findAllTaxes, 'taxes', 'code')).includes(code));

  assert.deepEqual((await mine.taxes.findTax(code)).data, created);
});

test('another organization cannot read, list or destroy a customer, and its upsert makes its own', async () => {
  const externalId = unique('acme');
  const { data: created } = await mine.customers.createCustomer({
    customer: { external_id: externalId, name: 'Acme', currency: 'EUR' },
  });

  await assertNotFound(() => theirs.customers.findCustomer(externalId), 'customer_not_found');
  await assertNotFound(() => theirs.customers.destroyCustomer(externalId), 'customer_not_found');
  assert.ok(!(await listed(theirs.customers.findAllCustomers, 'customers', 'external_id')).includes(externalId));

  // When the other organization upserts the same external_id, it gets a customer of its own
  const { data: other } = await theirs.customers.createCustomer({
    customer: { external_id: externalId, name: 'Someone else' },
  });
  assert.notEqual(other.customer.lago_id, created.customer.lago_id);
  assert.equal(other.customer.currency, null);
  assert.deepEqual((await mine.customers.findCustomer(externalId)).data, created);
});

test('the same codes live independently in both organizations', async () => {
  const metricCode = unique('storage');
  const taxCode = unique('vat');

  // Given the same codes created in both organizations with different values
  for (const [client, name, rate] of [
    [mine, 'Mine', '20'],
    [theirs, 'Theirs', '7'],
  ]) {
    await client.billableMetrics.createBillableMetric({
      billable_metric: { name, code: metricCode, aggregation_type: 'count_agg' },
    });
    await client.taxes.createTax({ tax: { name, code: taxCode, rate } });
  }

  // When one organization changes and then destroys its copies
  await theirs.taxes.updateTax(taxCode, { tax: { rate: '8' } });
  await theirs.billableMetrics.destroyBillableMetric(metricCode);
  await theirs.taxes.destroyTax(taxCode);

  // Then the other organization's copies are exactly as created, and its own are gone
  assert.equal((await mine.billableMetrics.findBillableMetric(metricCode)).data.billable_metric.name, 'Mine');
  const { data: tax } = await mine.taxes.findTax(taxCode);
  assert.deepEqual([tax.tax.name, tax.tax.rate], ['Mine', 20]);
  await assertNotFound(() => theirs.billableMetrics.findBillableMetric(metricCode), 'billable_metric_not_found');
  await assertNotFound(() => theirs.taxes.findTax(taxCode), 'tax_not_found');
});
