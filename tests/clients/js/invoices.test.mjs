/**
 * lago-javascript-client's `invoices` and `fees` against our API: the billing clock
 * (`POST /_local/billing-run`, local runner only) closes a calendar month into a finalized
 * invoice (no grace period), which the client lists, reads with its fees and subscription,
 * downloads as a PDF, marks paid and cannot void while it is paid. Expected amounts are worked
 * out from SEMANTICS (§7 first period, §8 taxes), not read from the implementation.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { UUID, failureOf, freshLago, requiredEnv, unique } from './stack.mjs';

/** A local-runner-only route, answered once its work is done. */
async function local(path, body) {
  const url = `${requiredEnv('LAGO_API_URL').replace(/\/+$/, '')}${path}`;
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  return JSON.parse(text);
}

/** Lago's rounding of a precise amount of cents: half away from zero. */
const cents = (amount) => Math.round(amount);

test('a closed month is invoiced with Lago fields the client reads, downloads and updates', async () => {
  const lago = await freshLago();
  // Given a 10 % tax, a count metric and a monthly calendar plan of 20.00 USD in arrears with
  // 1.25 USD per call, taxed on the plan,
  const taxCode = unique('tax');
  await lago.taxes.createTax({ tax: { name: 'Sales tax', code: taxCode, rate: '10' } });
  const metricCode = unique('calls');
  const { data: metric } = await lago.billableMetrics.createBillableMetric({
    billable_metric: { name: 'Calls', code: metricCode, aggregation_type: 'count_agg' },
  });
  const planCode = unique('plan');
  await lago.plans.createPlan({
    plan: {
      name: 'Basic',
      code: planCode,
      interval: 'monthly',
      amount_cents: 2000,
      amount_currency: 'USD',
      pay_in_advance: false,
      tax_codes: [taxCode],
      charges: [
        {
          billable_metric_id: metric.billable_metric.lago_id,
          charge_model: 'standard',
          properties: { amount: '1.25' },
        },
      ],
    },
  });
  // a customer without grace period, a subscription from now, and 3 calls.
  const customerId = unique('cus');
  await lago.customers.createCustomer({
    customer: {
      external_id: customerId,
      name: 'Acme',
      currency: 'USD',
      timezone: 'UTC',
      billing_configuration: { invoice_grace_period: 0 },
    },
  });
  const subscriptionId = unique('sub');
  const { data: created } = await lago.subscriptions.createSubscription({
    subscription: {
      external_customer_id: customerId,
      plan_code: planCode,
      external_id: subscriptionId,
      billing_time: 'calendar',
    },
  });
  const started = new Date(created.subscription.started_at);
  for (let i = 0; i < 3; i += 1) {
    await lago.events.createEvent({
      event: {
        transaction_id: unique('tr'),
        external_subscription_id: subscriptionId,
        code: metricCode,
        timestamp: Math.floor(started.getTime() / 1000) + 60,
      },
    });
  }
  await local('/_local/drain');

  // When the clock runs at the first midnight (UTC) of next month,
  const nextMonth = new Date(Date.UTC(started.getUTCFullYear(), started.getUTCMonth() + 1, 1));
  await local('/_local/billing-run', { time: nextMonth.toISOString().replace('.000Z', 'Z') });

  // then one finalized invoice: the fee of the days from the start day to the month's end,
  // 3 × 125 = 375 for the calls, 10 % on both.
  const { data: list } = await lago.invoices.findAllInvoices({ external_customer_id: customerId });
  assert.equal(list.invoices.length, 1);
  const { data: found } = await lago.invoices.findInvoice(list.invoices[0].lago_id);
  const invoice = found.invoice;
  const daysInMonth = new Date(Date.UTC(started.getUTCFullYear(), started.getUTCMonth() + 1, 0)).getUTCDate();
  const days = daysInMonth - started.getUTCDate() + 1;
  const subscriptionFee = cents((2000 * days) / daysInMonth);
  const feesAmount = subscriptionFee + 375;
  const taxes = cents(feesAmount * 0.1);
  assert.equal(invoice.status, 'finalized');
  assert.equal(invoice.sequential_id, 1);
  assert.match(invoice.lago_id, UUID);
  assert.deepEqual(
    [invoice.fees_amount_cents, invoice.taxes_amount_cents, invoice.total_amount_cents],
    [feesAmount, taxes, feesAmount + taxes],
  );
  assert.equal(invoice.issuing_date, nextMonth.toISOString().slice(0, 10));
  const byType = Object.fromEntries(invoice.fees.map((f) => [f.item.type, f]));
  assert.equal(byType.subscription.amount_cents, subscriptionFee);
  assert.equal(byType.charge.amount_cents, 375);
  assert.equal(byType.charge.units, '3.0');
  assert.equal(invoice.subscriptions[0].external_id, subscriptionId);
  assert.equal(invoice.billing_periods[0].external_subscription_id, subscriptionId);
  assert.equal(invoice.applied_taxes[0].tax_code, taxCode);

  // The fees API agrees; the PDF downloads.
  const { data: fees } = await lago.fees.findAllFees({ external_subscription_id: subscriptionId });
  assert.deepEqual(fees.fees.map((f) => f.amount_cents).sort((a, b) => a - b), [subscriptionFee, 375].sort((a, b) => a - b));
  const { data: fee } = await lago.fees.findFee(byType.charge.lago_id);
  assert.equal(fee.fee.lago_invoice_id, invoice.lago_id);
  const { data: downloaded } = await lago.invoices.downloadInvoice(invoice.lago_id);
  const pdf = await fetch(downloaded.invoice.file_url);
  assert.equal(pdf.status, 200);
  assert.equal(Buffer.from(await pdf.arrayBuffer()).subarray(0, 4).toString(), '%PDF');

  // Marked paid, it cannot be voided.
  const { data: paid } = await lago.invoices.updateInvoice(invoice.lago_id, {
    invoice: { payment_status: 'succeeded' },
  });
  assert.equal(paid.invoice.payment_status, 'succeeded');
  const refused = await failureOf(lago.invoices.voidInvoice(invoice.lago_id));
  assert.equal(refused.status, 405);
  assert.equal(refused.body.code, 'not_voidable');

  // Another organization cannot see it.
  const stranger = await freshLago();
  const hidden = await failureOf(stranger.invoices.findInvoice(invoice.lago_id));
  assert.equal(hidden.status, 404);
});
