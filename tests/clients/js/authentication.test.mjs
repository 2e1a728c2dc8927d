/**
 * A wrong or missing API key reaches lago-javascript-client's caller as a thrown 401 response
 * whose `getLagoError` body is Lago's `{"status": 401, "error": "Unauthorized"}`, on every
 * resource and method.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Client } from 'lago-javascript-client';

import { clientFor, failureOf, requiredEnv, unique } from './stack.mjs';

const CALLS = {
  'billableMetrics.createBillableMetric': (c, code) =>
    c.billableMetrics.createBillableMetric({ billable_metric: { name: 'x', code, aggregation_type: 'count_agg' } }),
  'billableMetrics.findBillableMetric': (c, code) => c.billableMetrics.findBillableMetric(code),
  'billableMetrics.findAllBillableMetrics': (c) => c.billableMetrics.findAllBillableMetrics(),
  'billableMetrics.updateBillableMetric': (c, code) =>
    c.billableMetrics.updateBillableMetric(code, { billable_metric: { name: 'x' } }),
  'billableMetrics.destroyBillableMetric': (c, code) => c.billableMetrics.destroyBillableMetric(code),
  'customers.createCustomer': (c, code) => c.customers.createCustomer({ customer: { external_id: code } }),
  'customers.findCustomer': (c, code) => c.customers.findCustomer(code),
  'customers.findAllCustomers': (c) => c.customers.findAllCustomers(),
  'customers.destroyCustomer': (c, code) => c.customers.destroyCustomer(code),
  'taxes.createTax': (c, code) => c.taxes.createTax({ tax: { name: 'x', code, rate: '1' } }),
  'taxes.findTax': (c, code) => c.taxes.findTax(code),
  'taxes.findAllTaxes': (c) => c.taxes.findAllTaxes(),
  'taxes.updateTax': (c, code) => c.taxes.updateTax(code, { tax: { rate: '2' } }),
  'taxes.destroyTax': (c, code) => c.taxes.destroyTax(code),
  'organizations.findOrganization': (c) => c.organizations.findOrganization(),
  'organizations.updateOrganization': (c, code) => c.organizations.updateOrganization({ organization: { city: code } }),
};

test('a wrong API key is 401 Unauthorized on every operation', async (t) => {
  const intruder = clientFor(unique('not_a_key'));
  for (const [name, call] of Object.entries(CALLS)) {
    await t.test(name, async () => {
      assert.deepEqual(await failureOf(call(intruder, unique('code'))), {
        status: 401,
        body: { status: 401, error: 'Unauthorized' },
      });
    });
  }
});

test('a client without an API key sends no Authorization header and gets 401', async () => {
  const anonymous = Client('', { baseUrl: `${requiredEnv('LAGO_API_URL').replace(/\/+$/, '')}/api/v1` });

  assert.deepEqual(await failureOf(anonymous.taxes.findAllTaxes()), {
    status: 401,
    body: { status: 401, error: 'Unauthorized' },
  });
});
