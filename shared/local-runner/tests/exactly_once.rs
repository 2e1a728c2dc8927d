//! Nothing lost, nothing counted twice: each fault the pipeline can meet, injected for real
//! (SQS redelivery, a worker crash between two writes, a failed or ambiguous hand-off to the
//! queue, throttled DynamoDB writes), and after it the usage equals the ground truth computed
//! from the accepted events.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::sync::Arc;

use rust_decimal::Decimal;
use serde_json::json;
use support::{
    Stack,
    faults::{Fault, Faults},
};

/// Sends `count` events worth 1..=count and returns their total (the ground truth).
async fn accept_events(
    stack: &Stack,
    app: &axum::Router,
    billed: &support::Billed,
    prefix: &str,
    count: i64,
) -> i64 {
    let mut truth = 0;
    for i in 1..=count {
        let body = json!({"event": stack.event(billed, &format!("{prefix}{i}"), i)});
        let (status, response) = stack.call(app, "POST", "/api/v1/events", Some(body)).await;
        assert_eq!(status, 200, "event {i}: {response}");
        truth += i;
    }
    truth
}

#[tokio::test]
async fn redelivering_every_sqs_message_twice_counts_each_event_once() {
    // Given 25 accepted events worth 1..=25 units.
    let stack = Stack::new("redeliver").await;
    let billed = stack.billed_sum(1).await;
    let truth = accept_events(&stack, &stack.app(), &billed, "tx", 25).await;

    // When every batch reaches the worker twice before it is deleted (an SQS redelivery).
    let deps = stack.aggregate_deps();
    let mut batches = 0;
    loop {
        let (event, receipts) = stack.receive().await;
        if receipts.is_empty() {
            break;
        }
        for delivery in 0..2 {
            let response = aggregate::handler(&deps, event.clone()).await;
            assert!(
                response.batch_item_failures.is_empty(),
                "delivery {delivery} failed"
            );
        }
        stack.delete(&receipts).await;
        batches += 1;
    }
    assert!(batches >= 3, "25 events arrive in batches of at most ten");

    // Then each event is counted once: 1 + 2 + ... + 25 = 325 units at 1.00 USD.
    let (units, events, cents) = stack.usage_of(&billed).await;
    assert_eq!(truth, 325);
    assert_eq!(units, vec![Decimal::from(truth)]);
    assert_eq!(events, vec![25]);
    assert_eq!(cents, truth * 100);
}

#[tokio::test]
async fn a_worker_crash_between_two_writes_is_repaired_by_the_redelivery() {
    // Given a plan with two charges on one metric: each batch writes two usage items.
    let stack = Stack::new("crash").await;
    let billed = stack.billed_sum(2).await;
    let truth = accept_events(&stack, &stack.app(), &billed, "tx", 6).await;
    let (event, receipts) = stack.receive().await;
    assert_eq!(receipts.len(), 6, "the six events fit one batch");

    // When the worker dies after its first write (the second PutItem never leaves).
    let faults = Arc::new(Faults::default());
    faults.add("PutItem", 1, 1, Fault::FailBeforeSend);
    let crashing = aggregate::Deps::new(
        stack.store.clone(),
        billing_aws::usage::UsageStore::with_client(
            support::dynamo_with(&stack.sdk, faults.clone()),
            &stack.usage_table,
        ),
    );
    let response = aggregate::handler(&crashing, event.clone()).await;
    assert_eq!(
        faults.injected(),
        1,
        "the crash happened between the two writes: {:?}",
        faults.calls()
    );
    assert_eq!(
        response.batch_item_failures.len(),
        6,
        "the whole batch is handed back"
    );

    // And SQS redelivers the batch to a healthy worker.
    let response = aggregate::handler(&stack.aggregate_deps(), event).await;
    assert!(response.batch_item_failures.is_empty());
    stack.delete(&receipts).await;

    // Then both charges count every event once: 1 + ... + 6 = 21 units each.
    let (units, events, cents) = stack.usage_of(&billed).await;
    assert_eq!(units, vec![Decimal::from(truth), Decimal::from(truth)]);
    assert_eq!(events, vec![6, 6]);
    assert_eq!(cents, 2 * truth * 100);
}

#[tokio::test]
async fn an_event_stored_but_not_queued_is_completed_by_the_client_retry_or_the_sweep() {
    let stack = Stack::new("enqueue").await;
    let billed = stack.billed_sum(1).await;
    let healthy = stack.app();

    // Given a queue that refuses every send (the write succeeds, the hand-off fails).
    let faults = Arc::new(Faults::default());
    faults.add("SendMessageBatch", 0, usize::MAX / 2, Fault::FailBeforeSend);
    let broken = stack.app_with(
        stack.event_store(),
        billing_aws::queue::EventQueue::with_client(
            support::sqs_with(&stack.sdk, faults.clone()),
            &stack.queue_url,
        ),
    );
    let first = json!({"event": stack.event(&billed, "retried", 7)});
    let second = json!({"event": stack.event(&billed, "swept", 11)});

    // When both events are sent, the client is told to retry, yet the events are stored.
    for body in [&first, &second] {
        let (status, response) = stack
            .call(&broken, "POST", "/api/v1/events", Some(body.clone()))
            .await;
        assert_eq!(status, 503, "{response}");
    }
    assert!(faults.injected() >= 2);
    for tx in ["retried", "swept"] {
        let (status, _) = stack
            .call(&healthy, "GET", &format!("/api/v1/events/{tx}"), None)
            .await;
        assert_eq!(status, 200, "{tx} is stored");
    }
    stack.drainer().drain().await.unwrap();
    let (units, _, _) = stack.usage_of(&billed).await;
    assert_eq!(units, vec![Decimal::ZERO], "nothing reached the queue yet");

    // And the client retries the first one, while the sweep picks up the second.
    let (status, response) = stack
        .call(&healthy, "POST", "/api/v1/events", Some(first.clone()))
        .await;
    assert_eq!(status, 200, "{response}");
    let report = sweep::sweep(&stack.event_store(), &stack.queue())
        .await
        .unwrap();
    assert_eq!(
        (report.found, report.resent),
        (1, 1),
        "only the second event was still waiting"
    );
    let again = sweep::sweep(&stack.event_store(), &stack.queue())
        .await
        .unwrap();
    assert_eq!(again.found, 0, "a resent event leaves the sweep's index");
    stack.drainer().drain().await.unwrap();

    // Then both are counted, once: 7 + 11 = 18 units.
    let (units, events, _) = stack.usage_of(&billed).await;
    assert_eq!(units, vec![Decimal::from(18)]);
    assert_eq!(events, vec![2]);
}

#[tokio::test]
async fn an_ambiguous_hand_off_that_did_reach_the_queue_is_not_counted_twice() {
    let stack = Stack::new("ambiguous").await;
    let billed = stack.billed_sum(1).await;

    // Given a queue that takes the message but whose answer is lost.
    let faults = Arc::new(Faults::default());
    faults.add(
        "SendMessageBatch",
        0,
        usize::MAX / 2,
        Fault::ThrottleAfterApply,
    );
    let lossy = stack.app_with(
        stack.event_store(),
        billing_aws::queue::EventQueue::with_client(
            support::sqs_with(&stack.sdk, faults.clone()),
            &stack.queue_url,
        ),
    );
    let body = json!({"event": stack.event(&billed, "ambiguous", 5)});
    let (status, _) = stack
        .call(&lossy, "POST", "/api/v1/events", Some(body.clone()))
        .await;
    assert_eq!(status, 503, "the client cannot know the event was queued");
    assert!(
        faults.injected() >= 3,
        "every attempt reached the queue and lost its answer"
    );

    // When the client retries (the event is resent with the same deduplication id).
    let (status, response) = stack
        .call(&stack.app(), "POST", "/api/v1/events", Some(body))
        .await;
    assert_eq!(status, 200, "{response}");
    stack.drainer().drain().await.unwrap();

    // Then the queue dropped the duplicate: 5 units, one event.
    let (units, events, _) = stack.usage_of(&billed).await;
    assert_eq!(units, vec![Decimal::from(5)]);
    assert_eq!(events, vec![1]);
}

#[tokio::test]
async fn throttled_dynamodb_writes_neither_lose_nor_double_count_events() {
    let stack = Stack::new("throttle").await;
    let billed = stack.billed_sum(1).await;

    // Given DynamoDB answering "throttled" after applying writes, on ingest and aggregation.
    let ingest_faults = Arc::new(Faults::default());
    // Calls 1, 3, 5 and 7: each throttled write is retried by the SDK and finds itself applied.
    for call in [0, 2, 4, 6] {
        ingest_faults.add("PutItem", call, 1, Fault::ThrottleAfterApply);
    }
    let throttled_ingest = stack.app_with(
        billing_aws::events::EventStore::with_client(
            support::dynamo_with(&stack.sdk, ingest_faults.clone()),
            &stack.events_table,
        ),
        stack.queue(),
    );
    let truth = accept_events(&stack, &throttled_ingest, &billed, "tx", 12).await;
    assert_eq!(ingest_faults.injected(), 4);

    let worker_faults = Arc::new(Faults::default());
    for call in [0, 2] {
        worker_faults.add("PutItem", call, 1, Fault::ThrottleAfterApply);
    }
    let throttled_worker = aggregate::Deps::new(
        stack.store.clone(),
        billing_aws::usage::UsageStore::with_client(
            support::dynamo_with(&stack.sdk, worker_faults.clone()),
            &stack.usage_table,
        ),
    );

    // When the worker processes every batch, redelivering what it reports as failed.
    for _ in 0..20 {
        let (event, receipts) = stack.receive().await;
        if receipts.is_empty() {
            break;
        }
        let response = aggregate::handler(&throttled_worker, event).await;
        if response.batch_item_failures.is_empty() {
            stack.delete(&receipts).await;
        } else {
            stack.release(&receipts).await;
        }
    }
    assert_eq!(worker_faults.injected(), 2);

    // Then 1 + ... + 12 = 78 units, twelve events.
    let (units, events, _) = stack.usage_of(&billed).await;
    assert_eq!(units, vec![Decimal::from(truth)]);
    assert_eq!(events, vec![12]);
}

#[tokio::test]
async fn a_poison_message_ends_in_the_dead_letter_queue_after_bounded_retries() {
    let stack = Stack::new("poison").await;
    let sqs = aws_sdk_sqs::Client::new(&stack.sdk);
    // Given a message no worker can read.
    sqs.send_message()
        .queue_url(&stack.queue_url)
        .message_body("{not an events message")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .unwrap();

    // When the worker drains the queue (each failure makes the message visible again).
    stack.drainer().drain().await.unwrap();

    // Then after maxReceiveCount receives it sits in the dead-letter queue.
    let dlq = sqs
        .receive_message()
        .queue_url(&stack.dlq_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap();
    let bodies: Vec<String> = dlq
        .messages
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.body)
        .collect();
    assert_eq!(bodies, vec!["{not an events message".to_owned()]);
}
