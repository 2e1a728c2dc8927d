/**
 * lago-javascript-client's `customers` works against our API unchanged: create as an upsert
 * on `external_id` (a second create changes the sent fields, keeps the others and can clear
 * one with null), find, list with page pagination, destroy, with the whole
 * CustomerObjectExtended round tripping in Lago's JSON types, and Lago's 404/422 errors through
 * `getLagoError`.
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

const PROFILE = {
  name: 'Acme Cloud SAS',
  firstname: 'Ada',
  lastname: 'Lovelace',
  email: 'billing@acme.example',
  phone: '+33 1 23 45 67 89',
  url: 'https://acme.example',
  logo_url: 'https://acme.example/logo.png',
  legal_name: 'Acme Cloud SAS',
  legal_number: 'FR123456789',
  tax_identification_number: 'FR40123456789',
  address_line1: '5 rue de la Paix',
  address_line2: 'Bâtiment B',
  city: 'Paris',
  state: 'Île-de-France',
  zipcode: '75002',
  country: 'FR',
  currency: 'EUR',
  timezone: 'Europe/Paris',
  account_type: 'customer',
  customer_type: 'company',
  net_payment_term: 30,
  finalize_zero_amount_invoice: 'finalize',
  skip_invoice_custom_sections: true,
};

const BILLING_CONFIGURATION = {
  invoice_grace_period: 2,
  payment_provider: 'gocardless',
  payment_provider_code: 'gocardless_fr',
  provider_customer_id: 'CU000123',
  sync: false,
  sync_with_provider: true,
  document_locale: 'de',
  subscription_invoice_issuing_date_anchor: 'current_period_end',
  subscription_invoice_issuing_date_adjustment: 'keep_anchor',
  provider_payment_methods: ['sepa_debit'],
};

const SHIPPING_ADDRESS = {
  address_line1: '1 Quay Street',
  address_line2: null,
  city: 'Dublin',
  state: null,
  zipcode: 'D02',
  country: 'IE',
};

function pick(object, keys) {
  return Object.fromEntries(keys.map((key) => [key, object[key]]));
}

test('a created customer comes back from find with every field as sent and of Lago type', async () => {
  const client = lago();
  const { data: tax } = await client.taxes.createTax({ tax: { name: 'VAT', code: unique('vat'), rate: '19.6' } });
  const externalId = unique('acme');

  // When a customer is created with every field Lago documents
  const { data: created } = await client.customers.createCustomer({
    customer: {
      external_id: externalId,
      ...PROFILE,
      billing_configuration: BILLING_CONFIGURATION,
      shipping_address: SHIPPING_ADDRESS,
      metadata: [
        { key: 'crm_id', value: '0015g00000XyZ', display_in_invoice: false },
        { key: 'purchase_order', value: 'PO-2024-17', display_in_invoice: true },
      ],
      tax_codes: [tax.tax.code],
    },
  });

  // Then each field comes back as sent, under Lago's root key
  const customer = created.customer;
  assert.equal(customer.external_id, externalId);
  assert.deepEqual(pick(customer, Object.keys(PROFILE)), PROFILE);
  assert.deepEqual(customer.billing_configuration, BILLING_CONFIGURATION);
  assert.deepEqual(customer.shipping_address, SHIPPING_ADDRESS);
  assert.deepEqual(
    customer.metadata.map((m) => pick(m, ['key', 'value', 'display_in_invoice'])),
    [
      { key: 'crm_id', value: '0015g00000XyZ', display_in_invoice: false },
      { key: 'purchase_order', value: 'PO-2024-17', display_in_invoice: true },
    ],
  );
  // And Lago's generated fields have Lago's types
  assert.match(customer.lago_id, UUID);
  assert.ok(Number.isInteger(customer.sequential_id) && customer.sequential_id > 0, `${customer.sequential_id}`);
  assert.equal(typeof customer.slug, 'string');
  assert.equal(customer.applicable_timezone, 'Europe/Paris');
  assert.match(customer.created_at, LAGO_TIMESTAMP);
  assert.match(customer.updated_at, LAGO_TIMESTAMP);
  customer.metadata.forEach((m) => assert.match(m.lago_id, UUID));
  assert.deepEqual(customer.integration_customers, []);
  // And the tax code is resolved to the TaxObject, its rate a number
  assert.deepEqual(customer.taxes, [tax.tax]);
  assert.equal(customer.taxes[0].rate, 19.6);
  // And find returns the very same body
  assert.deepEqual((await client.customers.findCustomer(externalId)).data, created);
});

test('creating again with the same external_id changes the sent fields, clears nulls and keeps the rest', async () => {
  const client = lago();
  const externalId = unique('acme');
  const { data: created } = await client.customers.createCustomer({
    customer: { external_id: externalId, ...PROFILE, billing_configuration: BILLING_CONFIGURATION },
  });

  // When the same external_id is sent with a new email, a cleared phone and one billing field
  const { data: upserted } = await client.customers.createCustomer({
    customer: {
      external_id: externalId,
      email: 'accounts@acme.example',
      phone: null,
      billing_configuration: { invoice_grace_period: 7 },
    },
  });

  // Then it is the same customer with exactly those changes
  const customer = upserted.customer;
  assert.equal(customer.lago_id, created.customer.lago_id);
  assert.equal(customer.sequential_id, created.customer.sequential_id);
  assert.equal(customer.created_at, created.customer.created_at);
  assert.deepEqual(pick(customer, Object.keys(PROFILE)), {
    ...PROFILE,
    email: 'accounts@acme.example',
    phone: null,
  });
  assert.deepEqual(customer.billing_configuration, { ...BILLING_CONFIGURATION, invoice_grace_period: 7 });
  assert.deepEqual((await client.customers.findCustomer(externalId)).data, upserted);
});

test('destroy returns the customer and then find is customer_not_found', async () => {
  const client = lago();
  const externalId = unique('acme');
  const { data: created } = await client.customers.createCustomer({ customer: { external_id: externalId } });

  const { data: destroyed } = await client.customers.destroyCustomer(externalId);

  assert.equal(destroyed.customer.lago_id, created.customer.lago_id);
  assert.deepEqual(await failureOf(client.customers.findCustomer(externalId)), {
    status: 404,
    body: { status: 404, error: 'Not Found', code: 'customer_not_found' },
  });
});

test('pages of a list follow Lago meta and together hold every customer once', async () => {
  // Given five customers in an organization of their own
  const client = await freshLago();
  const externalIds = [];
  for (let i = 0; i < 5; i += 1) {
    const { data } = await client.customers.createCustomer({ customer: { external_id: unique(`c${i}`) } });
    externalIds.push(data.customer.external_id);
  }

  // When the list is read two at a time
  const pages = await allPages(client.customers.findAllCustomers, 'customers', 2);

  // Then Lago's meta describes pages of 2, 2 and 1 that hold every customer exactly once
  assert.deepEqual(
    pages.map((page) => page.meta),
    expectedMetas(5, 2),
  );
  const listed = pages.flatMap((page) => page.items.map((customer) => customer.external_id));
  assert.deepEqual(listed.toSorted(), externalIds.toSorted());
  // And the sequential ids the organization gave them are distinct
  const sequentialIds = pages.flatMap((page) => page.items.map((customer) => customer.sequential_id));
  assert.equal(new Set(sequentialIds).size, 5);
});

test('an invalid customer is refused with 422 and field-keyed error details', async (t) => {
  const client = lago();
  const cases = [
    ['an unknown currency', { currency: 'XYZ' }, { currency: ['value_is_invalid'] }],
    ['an unknown timezone', { timezone: 'Mars/Olympus' }, { timezone: ['invalid_timezone'] }],
    ['a malformed email', { email: 'billing at acme' }, { email: ['invalid_email_format'] }],
    ['an unknown account type', { account_type: 'reseller' }, { account_type: ['value_is_invalid'] }],
    ['a negative payment term', { net_payment_term: -1 }, { net_payment_term: ['value_is_invalid'] }],
    ['a payment term of the wrong JSON type', { net_payment_term: 'thirty' }, { net_payment_term: ['value_is_invalid'] }],
  ];
  for (const [name, fields, errorDetails] of cases) {
    await t.test(name, async () => {
      const externalId = unique('bad');

      const failure = await failureOf(client.customers.createCustomer({ customer: { external_id: externalId, ...fields } }));

      assert.deepEqual(failure, {
        status: 422,
        body: { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: errorDetails },
      });
      assert.equal((await failureOf(client.customers.findCustomer(externalId))).status, 404);
    });
  }
});

test('a customer without an external_id is refused with value_is_mandatory', async () => {
  const failure = await failureOf(lago().customers.createCustomer({ customer: { name: 'Nobody' } }));

  assert.equal(failure.status, 422);
  assert.deepEqual(failure.body.error_details, { external_id: ['value_is_mandatory'] });
});

test('an unknown tax code is tax_not_found and creates nothing', async () => {
  const client = lago();
  const externalId = unique('acme');

  const failure = await failureOf(
    client.customers.createCustomer({ customer: { external_id: externalId, tax_codes: [unique('no_such_tax')] } }),
  );

  assert.deepEqual(failure, { status: 404, body: { status: 404, error: 'Not Found', code: 'tax_not_found' } });
  assert.equal((await failureOf(client.customers.findCustomer(externalId))).body.code, 'customer_not_found');
});

test('an unknown external_id is customer_not_found for find and destroy', async () => {
  const client = lago();
  const externalId = unique('missing');

  for (const call of [() => client.customers.findCustomer(externalId), () => client.customers.destroyCustomer(externalId)]) {
    assert.deepEqual(await failureOf(call()), {
      status: 404,
      body: { status: 404, error: 'Not Found', code: 'customer_not_found' },
    });
  }
});
