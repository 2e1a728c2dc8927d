//! The invoice document: `POST /invoices/{lago_id}/download` renders the PDF in Rust, stores it
//! in the documents bucket and answers a presigned `file_url`; the PDF read back through that
//! URL says what the invoice says.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod support;

use http::{Method, StatusCode};
use serde_json::json;
use support::Scenario;

#[tokio::test]
async fn a_finalized_invoice_downloads_as_a_pdf_that_reads_like_the_invoice() {
    // Given a finalized invoice: 17 days of `basic` (1700) and 10 calls (500), VAT 20 % (440).
    let mut s = Scenario::start("Acme").await;
    s.metric("calls").await;
    s.ok(
        Method::POST,
        "/taxes",
        Some(json!({"tax": {"name": "VAT", "code": "vat", "rate": "20"}})),
    )
    .await;
    s.plan(
        "basic",
        "monthly",
        3100,
        false,
        json!({"tax_codes": ["vat"]}),
        &[("calls", "0.5")],
    )
    .await;
    s.customer("cus", "UTC", None).await;
    s.now("2024-01-15T10:00:00Z");
    s.subscribe("sub", "cus", "basic", "calendar", "2024-01-15T10:00:00Z")
        .await;
    s.usage("sub", "calls", "2024-01-20T12:00:00Z", 10).await;
    s.bill("2024-02-01T00:00:00Z").await;
    let invoice = s.invoices_of("sub").await.remove(0);
    let id = invoice["lago_id"].as_str().unwrap();
    let number = invoice["number"].as_str().unwrap();
    assert_eq!(invoice["file_url"], serde_json::Value::Null);

    // When it is downloaded.
    let downloaded = s
        .ok(Method::POST, &format!("/invoices/{id}/download"), None)
        .await;
    let url = downloaded["invoice"]["file_url"]
        .as_str()
        .expect("a file_url")
        .to_owned();

    // Then the URL serves a PDF whose text names the invoice and its amounts.
    let response = reqwest::get(&url).await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"%PDF-"));
    let pdf = lopdf::Document::load_mem(&bytes).unwrap();
    let text = pdf.extract_text(&[1]).unwrap();
    for expected in [
        number,
        "Bill to: cus (cus)",
        "basic (subscription)",
        "EUR 17.00",
        "calls",
        "EUR 5.00",
        "VAT (20%)",
        "EUR 4.40",
        "Total",
        "EUR 26.40",
    ] {
        assert!(text.contains(expected), "{expected:?} not in {text}");
    }
    // And GET shows the same file_url; a second download renders nothing new.
    let again = s
        .ok(Method::POST, &format!("/invoices/{id}/download"), None)
        .await;
    assert!(again["invoice"]["file_url"].as_str().is_some());

    // A draft has no document.
    let mut d = Scenario::start("Acme").await;
    d.metric("calls").await;
    d.plan("basic", "monthly", 3100, false, json!({}), &[])
        .await;
    d.customer("cus", "UTC", Some(2)).await;
    d.subscribe("sub", "cus", "basic", "calendar", "2024-01-01T00:00:00Z")
        .await;
    d.bill("2024-02-01T00:00:00Z").await;
    let draft = d.invoices_of("sub").await.remove(0);
    let (status, _) = d
        .call(
            Method::POST,
            &format!("/invoices/{}/download", draft["lago_id"].as_str().unwrap()),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
