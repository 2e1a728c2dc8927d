/**
 * lago-javascript-client's `taxes` works against our API unchanged: create with the rate as
 * the decimal string Lago documents and read it back as a JSON number, find, list with page
 * pagination, update, destroy, and Lago's 404/422 errors through `getLagoError`.
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

test('a created tax comes back from find with the rate as a number', async () => {
  const client = lago();
  const code = unique('vat');

  // When a tax is created with the rate as a decimal string
  const { data: created } = await client.taxes.createTax({
    tax: { name: 'French VAT', code, rate: '20.0', description: 'Standard rate' },
  });

  // Then every TaxObject field is there, the rate as the number 20
  const { lago_id: lagoId, created_at: createdAt, ...fields } = created.tax;
  assert.match(lagoId, UUID);
  assert.match(createdAt, LAGO_TIMESTAMP);
  assert.equal(typeof fields.rate, 'number');
  assert.deepEqual(
    {
      name: fields.name,
      code: fields.code,
      rate: fields.rate,
      description: fields.description,
      applied_to_organization: fields.applied_to_organization,
    },
    { name: 'French VAT', code, rate: 20, description: 'Standard rate', applied_to_organization: false },
  );
  // And find returns the very same body
  const { data: found } = await client.taxes.findTax(code);
  assert.deepEqual(found, created);
});

test('decimal string rates round-trip exactly as numbers', async (t) => {
  const client = lago();
  const cases = [
    ['5.5', 5.5],
    ['12.345', 12.345],
    ['0.01', 0.01],
    ['0', 0],
    ['100', 100],
    ['7.50', 7.5],
  ];
  for (const [sent, returned] of cases) {
    await t.test(`"${sent}" -> ${returned}`, async () => {
      const code = unique('tax');

      const { data } = await client.taxes.createTax({ tax: { name: 'Tax', code, rate: sent } });

      assert.equal(data.tax.rate, returned);
      assert.equal((await client.taxes.findTax(code)).data.tax.rate, returned);
    });
  }
});

test('update changes the sent fields and keeps the others', async () => {
  const client = lago();
  const code = unique('vat');
  const { data: created } = await client.taxes.createTax({
    tax: { name: 'VAT', code, rate: '20', description: 'Standard rate' },
  });

  // When only the rate is updated
  const { data: updated } = await client.taxes.updateTax(code, { tax: { rate: '5.5' } });

  // Then only the rate changed
  assert.deepEqual(updated.tax, { ...created.tax, rate: 5.5 });
  assert.deepEqual((await client.taxes.findTax(code)).data, updated);
});

test('destroy returns the tax and then find is tax_not_found', async () => {
  const client = lago();
  const code = unique('vat');
  const { data: created } = await client.taxes.createTax({ tax: { name: 'VAT', code, rate: '20' } });

  const { data: destroyed } = await client.taxes.destroyTax(code);

  assert.equal(destroyed.tax.lago_id, created.tax.lago_id);
  assert.deepEqual(await failureOf(client.taxes.findTax(code)), {
    status: 404,
    body: { status: 404, error: 'Not Found', code: 'tax_not_found' },
  });
});

test('pages of a list follow Lago meta and together hold every tax once', async () => {
  // Given four taxes in an organization of their own
  const client = await freshLago();
  const codes = [];
  for (let i = 0; i < 4; i += 1) {
    const { data } = await client.taxes.createTax({ tax: { name: `Tax ${i}`, code: unique(`t${i}`), rate: `${i}` } });
    codes.push(data.tax.code);
  }

  // When the list is read three at a time
  const pages = await allPages(client.taxes.findAllTaxes, 'taxes', 3);

  // Then Lago's meta describes pages of 3 and 1 that hold every tax exactly once
  assert.deepEqual(
    pages.map((page) => page.meta),
    expectedMetas(4, 3),
  );
  const listed = pages.flatMap((page) => page.items.map((tax) => tax.code));
  assert.deepEqual(listed.toSorted(), codes.toSorted());
});

test('an invalid tax is refused with 422 and field-keyed error details', async (t) => {
  const client = lago();
  const cases = [
    ['a rate above 100', { rate: '100.5' }, { rate: ['value_is_invalid'] }],
    ['a rate that is not a number', { rate: 'twenty' }, { rate: ['value_is_invalid'] }],
    ['a negative rate', { rate: '-1' }, { rate: ['value_is_invalid'] }],
    ['no rate', { rate: undefined }, { rate: ['value_is_mandatory'] }],
    ['an empty name', { name: '' }, { name: ['value_is_mandatory'] }],
  ];
  for (const [name, overrides, errorDetails] of cases) {
    await t.test(name, async () => {
      const code = unique('bad_tax');

      const failure = await failureOf(client.taxes.createTax({ tax: { name: 'VAT', code, rate: '20', ...overrides } }));

      assert.deepEqual(failure, {
        status: 422,
        body: { status: 422, error: 'Unprocessable Entity', code: 'validation_errors', error_details: errorDetails },
      });
      assert.equal((await failureOf(client.taxes.findTax(code))).status, 404);
    });
  }
});

test('a second tax with the same code is refused with value_already_exist', async () => {
  const client = lago();
  const code = unique('vat');
  await client.taxes.createTax({ tax: { name: 'VAT', code, rate: '20' } });

  const failure = await failureOf(client.taxes.createTax({ tax: { name: 'Other', code, rate: '10' } }));

  assert.equal(failure.status, 422);
  assert.deepEqual(failure.body.error_details, { code: ['value_already_exist'] });
});

test('an unknown code is tax_not_found for find, update and destroy', async () => {
  const client = lago();
  const code = unique('missing');
  const calls = [
    () => client.taxes.findTax(code),
    () => client.taxes.updateTax(code, { tax: { rate: '1' } }),
    () => client.taxes.destroyTax(code),
  ];

  for (const call of calls) {
    assert.deepEqual(await failureOf(call()), {
      status: 404,
      body: { status: 404, error: 'Not Found', code: 'tax_not_found' },
    });
  }
});
