"""An invoice's whole life through lago-python-client against the local stack: the billing clock
(`POST /_local/billing-run`, local runner only) closes a calendar month into a draft, a late event
changes the draft on refresh, finalization numbers it, then payment status, the PDF, the fees API
and void; every change reaches a JWT webhook endpoint, verified with the key the client fetches.
Expected amounts are worked out from SEMANTICS in comments (§7 first period, §8 taxes)."""

import base64
import calendar
import datetime as dt
import http.server
import json
import threading
from decimal import ROUND_HALF_UP, Decimal

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BillableMetric,
    Charge,
    Charges,
    Customer,
    CustomerBillingConfiguration,
    Event,
    Plan,
    Subscription,
    Tax,
    WebhookEndpoint,
)
from lago_python_client.models.invoice import InvoicePaymentStatusChange

# Generous bounds for a shared emulator on a small machine; limits, not waits.
DRAIN_TIMEOUT_S = 900


def local(api_url, path, body=None):
    """A local-runner-only route (`/_local/...`), answered once its work is done."""
    response = httpx.post(f"{api_url.rstrip('/')}{path}", json=body, timeout=DRAIN_TIMEOUT_S)
    assert response.status_code == 200, response.text
    return response.json()


class Receiver:
    """An HTTP endpoint on this machine that records every webhook it is sent."""

    def __init__(self):
        hits = self.hits = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                hits.append(({k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()


def b64url(part):
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def verified_body(headers, body, public_key_pem):
    """The webhook body, after checking its RS256 JWT signature (whose `data` is the body)."""
    assert headers["x-lago-signature-algorithm"] == "jwt"
    token = headers["x-lago-signature"]
    header, payload, signature = token.split(".")
    key = serialization.load_pem_public_key(public_key_pem)
    key.verify(b64url(signature), f"{header}.{payload}".encode(), padding.PKCS1v15(), hashes.SHA256())
    assert json.loads(b64url(header))["alg"] == "RS256"
    assert json.loads(b64url(payload))["data"] == body.decode()
    return json.loads(body)


def cents(amount):
    """Lago's rounding of a precise amount to cents: half away from zero."""
    return int(Decimal(amount).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_an_invoice_is_drafted_refreshed_finalized_paid_downloaded_and_voided(fresh_client, api_url, unique):
    client = fresh_client
    receiver = Receiver()
    try:
        run_invoice_life(client, api_url, unique, receiver)
    finally:
        receiver.close()


def run_invoice_life(client, api_url, unique, receiver):
    # Given a 20 % tax, a count metric, and a monthly calendar plan of 30.00 EUR in arrears with
    # 0.50 EUR per call, taxed on the plan,
    tax_code = unique("vat")
    client.taxes.create(Tax(name="VAT", code=tax_code, rate=20))
    metric_code = unique("calls")
    metric = client.billable_metrics.create(
        BillableMetric(name="Calls", code=metric_code, aggregation_type="count_agg")
    )
    plan_code = unique("plan")
    client.plans.create(
        Plan(
            name="Basic",
            code=plan_code,
            interval="monthly",
            amount_cents=3000,
            amount_currency="EUR",
            pay_in_advance=False,
            tax_codes=[tax_code],
            charges=Charges(
                __root__=[
                    Charge(billable_metric_id=metric.lago_id, charge_model="standard", properties={"amount": "0.5"})
                ]
            ),
        )
    )
    # a JWT webhook endpoint, a customer with one day of grace, and a subscription from now
    client.webhook_endpoints.create(WebhookEndpoint(webhook_url=receiver.url, signature_algo="jwt"))
    customer_id = unique("cus")
    client.customers.create(
        Customer(
            external_id=customer_id,
            name="Acme",
            currency="EUR",
            timezone="UTC",
            billing_configuration=CustomerBillingConfiguration(invoice_grace_period=1),
        )
    )
    subscription_id = unique("sub")
    subscription = client.subscriptions.create(
        Subscription(
            external_customer_id=customer_id,
            plan_code=plan_code,
            external_id=subscription_id,
            billing_time="calendar",
        )
    )
    started = dt.datetime.fromisoformat(subscription.started_at.replace("Z", "+00:00"))

    def calls(count):
        for _ in range(count):
            client.events.create(
                Event(
                    transaction_id=unique("tr"),
                    external_subscription_id=subscription_id,
                    code=metric_code,
                    timestamp=int(started.timestamp()) + 60,
                )
            )
        local(api_url, "/_local/drain")

    calls(4)

    # When the billing clock runs at the first midnight of next month (UTC),
    days_in_month = calendar.monthrange(started.year, started.month)[1]
    month_end = started.replace(day=days_in_month, hour=0, minute=0, second=0, microsecond=0)
    next_month = month_end + dt.timedelta(days=1)
    local(api_url, "/_local/billing-run", {"time": next_month.strftime("%Y-%m-%dT%H:%M:%SZ")})

    # Then one draft: the subscription fee prorated over the days from the start day to the
    # month's end, 4 calls × 50 = 200, and 20 % VAT on both.
    listed = client.invoices.find_all({"external_customer_id": customer_id})
    assert len(listed["invoices"]) == 1
    invoice = client.invoices.find(listed["invoices"][0].lago_id)
    days = days_in_month - started.day + 1
    subscription_fee = cents(Decimal(3000) * days / days_in_month)

    def amounts(invoice):
        by_type = {f.item.type: f.amount_cents for f in invoice.fees.__root__}
        return by_type, (invoice.fees_amount_cents, invoice.taxes_amount_cents, invoice.total_amount_cents)

    def expected(usage):
        fees = subscription_fee + usage
        taxes = cents(Decimal(fees) * Decimal("0.2"))
        return {"subscription": subscription_fee, "charge": usage}, (fees, taxes, fees + taxes)

    assert invoice.status == "draft"
    assert amounts(invoice) == expected(200)
    assert invoice.subscriptions.__root__[0].external_id == subscription_id
    assert invoice.billing_periods.__root__[0].invoicing_reason == "subscription_periodic"

    # When two late calls arrive inside the grace period and the draft is refreshed,
    calls(2)
    refreshed = client.invoices.refresh(invoice.lago_id)

    # then the draft bills 6 calls.
    assert refreshed.status == "draft"
    assert amounts(refreshed) == expected(300)

    # When it is finalized, it is numbered; a later event and refresh no longer change it.
    finalized = client.invoices.finalize(invoice.lago_id)
    assert finalized.status == "finalized"
    assert finalized.sequential_id == 1
    assert finalized.number.endswith("-001")
    calls(1)
    client.invoices.refresh(invoice.lago_id)
    assert amounts(client.invoices.find(invoice.lago_id)) == expected(300)

    # Payment status, the PDF, and the fees API.
    paid = client.invoices.update(InvoicePaymentStatusChange(payment_status="succeeded"), invoice.lago_id)
    assert paid.payment_status == "succeeded"
    downloaded = client.invoices.download(invoice.lago_id)
    pdf = httpx.get(downloaded.file_url, timeout=60)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    fees = client.fees.find_all({"external_subscription_id": subscription_id})["fees"]
    assert sorted(f.amount_cents for f in fees) == sorted([subscription_fee, 300])
    charge_fee = next(f for f in fees if f.item.type == "charge")
    assert client.fees.find(charge_fee.lago_id).units == "6.0"

    # A paid invoice cannot be voided (Lago's 405 not_voidable); once its payment failed, it can,
    # and a voided invoice cannot be finalized again.
    with pytest.raises(LagoApiError) as caught:
        client.invoices.void(invoice.lago_id)
    assert (caught.value.status_code, caught.value.response["code"]) == (405, "not_voidable")
    failed = client.invoices.update(InvoicePaymentStatusChange(payment_status="failed"), invoice.lago_id)
    assert failed.payment_status == "failed"
    voided = client.invoices.void(invoice.lago_id)
    assert voided.status == "voided"
    with pytest.raises(LagoApiError) as caught:
        client.invoices.finalize(invoice.lago_id)
    assert caught.value.status_code in (404, 405, 422)

    # Every change reached the endpoint, signed with the key the client fetches.
    local(api_url, "/_local/drain-webhooks")
    public_key = client.webhooks.public_key()
    bodies = [verified_body(h, b, public_key) for h, b in receiver.hits]
    about_invoice = [b["webhook_type"] for b in bodies if b["object_type"] == "invoice"]
    for webhook_type, count in (
        ("invoice.drafted", 1),
        ("invoice.created", 1),
        ("invoice.payment_status_updated", 2),
        ("invoice.generated", 1),
        ("invoice.voided", 1),
    ):
        assert about_invoice.count(webhook_type) == count, (webhook_type, about_invoice)
    created = next(b for b in bodies if b["webhook_type"] == "invoice.created")
    assert created["invoice"]["lago_id"] == invoice.lago_id
    assert created["invoice"]["total_amount_cents"] == expected(300)[1][2]
    assert created["organization_id"] == bodies[0]["organization_id"]
    assert "subscription.started" in [b["webhook_type"] for b in bodies]
