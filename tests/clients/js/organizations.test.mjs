/**
 * lago-javascript-client's `organizations` works against our API unchanged: updateOrganization
 * stores every documented setting and findOrganization reads them back, taxes applied to the
 * organization are listed on it, and invalid settings are refused with Lago's 422. Each test
 * uses an organization of its own, so changing settings cannot disturb other tests.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { LAGO_TIMESTAMP, UUID, failureOf, freshLago, unique } from './stack.mjs';

const SETTINGS = {
  webhook_url: 'https://hooks.acme.example/lago',
  country: 'DE',
  default_currency: 'EUR',
  address_line1: 'Unter den Linden 1',
  address_line2: null,
  state: 'Berlin',
  zipcode: '10117',
  email: 'billing@acme.example',
  city: 'Berlin',
  legal_name: 'Acme Cloud GmbH',
  legal_number: 'HRB 12345',
  document_numbering: 'per_organization',
  document_number_prefix: 'ACM',
  net_payment_term: 14,
  tax_identification_number: 'DE123456789',
  timezone: 'Europe/Berlin',
  finalize_zero_amount_invoice: false,
  billing_configuration: {
    invoice_footer: 'Vielen Dank',
    invoice_grace_period: 4,
    document_locale: 'de',
  },
};

function pick(object, keys) {
  return Object.fromEntries(keys.map((key) => [key, object[key]]));
}

test('every setting sent is returned by the update and read back by find', async () => {
  const client = await freshLago();

  // When every documented setting is updated
  const { data: updated } = await client.organizations.updateOrganization({ organization: SETTINGS });

  // Then the response carries each of them in OrganizationObject
  const organization = updated.organization;
  assert.deepEqual(pick(organization, Object.keys(SETTINGS)), SETTINGS);
  assert.match(organization.lago_id, UUID);
  assert.match(organization.created_at, LAGO_TIMESTAMP);
  assert.ok(organization.name.startsWith('Fresh '), organization.name);
  assert.deepEqual(organization.webhook_urls, ['https://hooks.acme.example/lago']);
  // And find reads back exactly what the update returned
  assert.deepEqual((await client.organizations.findOrganization()).data, updated);
});

test('a partial update changes only what it sends and null clears a field', async () => {
  const client = await freshLago();
  await client.organizations.updateOrganization({ organization: SETTINGS });

  const { data } = await client.organizations.updateOrganization({
    organization: { city: 'Hamburg', legal_number: null },
  });

  assert.deepEqual(pick(data.organization, Object.keys(SETTINGS)), {
    ...SETTINGS,
    city: 'Hamburg',
    legal_number: null,
  });
});

test('taxes applied to the organization are listed on it with their rate as a number', async () => {
  const client = await freshLago();
  const code = unique('vat');

  // Given a tax applied to the organization and one that is not
  const { data: applied } = await client.taxes.createTax({
    tax: { name: 'VAT', code, rate: '19', applied_to_organization: true },
  });
  await client.taxes.createTax({ tax: { name: 'Other', code: unique('other'), rate: '7' } });

  // Then the organization lists only the applied one
  const { data } = await client.organizations.findOrganization();
  assert.deepEqual(data.organization.taxes, [applied.tax]);
  assert.equal(data.organization.taxes[0].rate, 19);
});

test('an invalid setting is refused with 422 and changes nothing', async (t) => {
  const client = await freshLago();
  const { data: before } = await client.organizations.updateOrganization({ organization: { city: 'Berlin' } });
  const cases = [
    ['an unknown timezone', { timezone: 'Mars/Olympus' }, { timezone: ['invalid_timezone'] }],
    ['an unknown currency', { default_currency: 'XYZ' }, { default_currency: ['value_is_invalid'] }],
    ['an unknown numbering', { document_numbering: 'per_planet' }, { document_numbering: ['value_is_invalid'] }],
    ['a malformed country', { country: 'Germany' }, { country: ['not_a_valid_country_code'] }],
  ];
  for (const [name, fields, errorDetails] of cases) {
    await t.test(name, async () => {
      const failure = await failureOf(
        client.organizations.updateOrganization({ organization: { city: 'Munich', ...fields } }),
      );

      assert.deepEqual(failure, {
        status: 422,
        body: { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: errorDetails },
      });
      assert.deepEqual((await client.organizations.findOrganization()).data, before);
    });
  }
});
