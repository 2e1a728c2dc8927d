//! The one source of truth for the resources the local stack creates: tables with their keys,
//! indexes and TTL, queues with their dead-letter queues, the event bus and its rules, and the
//! names of the secrets functions read.
//!
//! `template.yaml` declares the same resources for AWS; the test
//! `shared/aws/tests/template_matches_infra.rs` fails when the two disagree, so the local stack
//! and a deployed stack cannot drift apart.

/// A DynamoDB table: string hash and range keys, optional global secondary indexes, a TTL
/// attribute; on-demand billing and point-in-time recovery in every environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableSpec {
    /// The CloudFormation logical id in `template.yaml`.
    pub logical_id: &'static str,
    /// The environment variable that carries the table name to functions.
    pub env_var: &'static str,
    /// Suffix of the physical name (`<prefix>-<suffix>`).
    pub name_suffix: &'static str,
    /// Hash key attribute (type S).
    pub hash_key: &'static str,
    /// Range key attribute (type S).
    pub range_key: &'static str,
    /// Global secondary indexes: (name, hash key, range key), all string keys, projection ALL.
    pub indexes: &'static [(&'static str, &'static str, &'static str)],
    /// The attribute DynamoDB's TTL reads (epoch seconds).
    pub ttl_attribute: &'static str,
}

/// An SQS queue and its dead-letter queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueSpec {
    /// The CloudFormation logical id of the queue.
    pub logical_id: &'static str,
    /// The CloudFormation logical id of its dead-letter queue.
    pub dlq_logical_id: &'static str,
    /// The environment variable that carries the queue URL to functions.
    pub env_var: &'static str,
    /// The environment variable that carries the dead-letter queue URL (tools and tests).
    pub dlq_env_var: &'static str,
    /// Suffix of the physical name (`<prefix>-<suffix>`; the DLQ adds `-dlq`).
    pub name_suffix: &'static str,
    /// How long a received message stays invisible, in seconds (at least the consumer's timeout).
    pub visibility_timeout_s: u32,
    /// Receives before a message moves to the dead-letter queue.
    pub max_receive_count: u32,
    /// How long the dead-letter queue keeps a message, in seconds (14 days, the SQS maximum).
    pub dlq_retention_s: u32,
    /// A FIFO queue (names end in `.fifo`; messages are ordered per group).
    pub fifo: bool,
}

impl QueueSpec {
    /// The physical queue name under `prefix`.
    pub fn name(&self, prefix: &str) -> String {
        let fifo = if self.fifo { ".fifo" } else { "" };
        format!("{prefix}-{}{fifo}", self.name_suffix)
    }

    /// The physical dead-letter queue name under `prefix`.
    pub fn dlq_name(&self, prefix: &str) -> String {
        let fifo = if self.fifo { ".fifo" } else { "" };
        format!("{prefix}-{}-dlq{fifo}", self.name_suffix)
    }
}

/// The EventBridge bus that carries domain events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusSpec {
    /// The CloudFormation logical id.
    pub logical_id: &'static str,
    /// The environment variable that carries the bus name to functions.
    pub env_var: &'static str,
    /// Suffix of the physical name (`<prefix>-<suffix>`).
    pub name_suffix: &'static str,
}

/// Organizations, API keys, billable metrics, customers, taxes, plans, subscriptions, invoices:
/// one item collection per organization (`pk = ORG#<id>`), plus `gsi1` for secondary lookups.
pub const BILLING_TABLE: TableSpec = TableSpec {
    logical_id: "BillingTable",
    env_var: "BILLING_TABLE",
    name_suffix: "billing",
    hash_key: "pk",
    range_key: "sk",
    indexes: &[("gsi1", "gsi1pk", "gsi1sk")],
    ttl_attribute: "expires_at",
};

/// Usage events, keyed by their identity (`pk = EVT#<org>#<transaction_id>`,
/// `sk = <external_subscription_id>`) so that storing one is the deduplicating write. The
/// sparse index `unsent` holds only events whose hand-off to the queue failed, for the sweep.
pub const EVENTS_TABLE: TableSpec = TableSpec {
    logical_id: "EventsTable",
    env_var: "EVENTS_TABLE",
    name_suffix: "events",
    hash_key: "pk",
    range_key: "sk",
    indexes: &[("unsent", "unsent_pk", "unsent_sk")],
    ttl_attribute: "expires_at",
};

/// Pre-aggregated usage: one state item per subscription, charges period, charge, filter
/// bucket and pricing group, plus one item per distinct value of unique counts.
pub const USAGE_TABLE: TableSpec = TableSpec {
    logical_id: "UsageTable",
    env_var: "USAGE_TABLE",
    name_suffix: "usage",
    hash_key: "pk",
    range_key: "sk",
    indexes: &[],
    ttl_attribute: "expires_at",
};

/// Every table of the stack.
pub const TABLES: [TableSpec; 3] = [BILLING_TABLE, EVENTS_TABLE, USAGE_TABLE];

/// Accepted usage events on their way to aggregation. FIFO, grouped by subscription: one
/// worker at a time per subscription, in ingestion order, which is what lets each usage item
/// remember the few messages that may still be redelivered to it.
pub const EVENTS_QUEUE: QueueSpec = QueueSpec {
    logical_id: "EventsQueue",
    dlq_logical_id: "EventsDeadLetterQueue",
    env_var: "EVENTS_QUEUE_URL",
    dlq_env_var: "EVENTS_DLQ_URL",
    name_suffix: "events",
    visibility_timeout_s: 60,
    max_receive_count: 5,
    dlq_retention_s: 1_209_600,
    fifo: true,
};

/// Domain events on their way to the organizations' webhook endpoints, fed by [`WEBHOOK_RULE`].
/// Standard (not FIFO): deliveries are independent and each carries its own unique key. The
/// dispatcher postpones a failed delivery with a growing visibility timeout; after
/// `max_receive_count` attempts the message parks in the DLQ. The visibility timeout is six
/// times the dispatcher's 30 s timeout, as Lambda recommends for SQS sources.
pub const WEBHOOK_QUEUE: QueueSpec = QueueSpec {
    logical_id: "WebhookQueue",
    dlq_logical_id: "WebhookDeadLetterQueue",
    env_var: "WEBHOOK_QUEUE_URL",
    dlq_env_var: "WEBHOOK_DLQ_URL",
    name_suffix: "webhooks",
    visibility_timeout_s: 180,
    max_receive_count: 8,
    dlq_retention_s: 1_209_600,
    fifo: false,
};

/// Units of billing work (one external subscription id at one instant), from the billing
/// clock to the invoice worker. FIFO: the deduplication id `(subscription, billing instant)`
/// drops a second clock run for the same instant, and one message group per subscription
/// keeps two workers off the same subscription (the invoice claims, not the queue, guarantee
/// one invoice per period). The visibility timeout is six times the worker's 60 s timeout.
pub const BILLING_QUEUE: QueueSpec = QueueSpec {
    logical_id: "BillingQueue",
    dlq_logical_id: "BillingDeadLetterQueue",
    env_var: "BILLING_QUEUE_URL",
    dlq_env_var: "BILLING_DLQ_URL",
    name_suffix: "billing",
    visibility_timeout_s: 360,
    max_receive_count: 5,
    dlq_retention_s: 1_209_600,
    fifo: true,
};

/// Every queue of the stack.
pub const QUEUES: [QueueSpec; 3] = [EVENTS_QUEUE, WEBHOOK_QUEUE, BILLING_QUEUE];

/// The domain-event bus.
pub const BUS: BusSpec = BusSpec {
    logical_id: "Bus",
    env_var: "EVENT_BUS_NAME",
    name_suffix: "bus",
};

/// An EventBridge rule on [`BUS`] that sends matching events to a queue. The queue's policy
/// lets only this rule send to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleSpec {
    /// The CloudFormation logical id of the rule.
    pub logical_id: &'static str,
    /// Suffix of the physical name (`<prefix>-<suffix>`).
    pub name_suffix: &'static str,
    /// The `source` it matches.
    pub source: &'static str,
    /// The `detail-type` it matches.
    pub detail_type: &'static str,
    /// The queue it sends to.
    pub target: QueueSpec,
    /// The target's id within the rule.
    pub target_id: &'static str,
    /// The CloudFormation logical id of the target queue's policy.
    pub queue_policy_logical_id: &'static str,
}

impl RuleSpec {
    /// The physical rule name under `prefix`.
    pub fn name(&self, prefix: &str) -> String {
        format!("{prefix}-{}", self.name_suffix)
    }

    /// The event pattern, as EventBridge reads it.
    pub fn event_pattern(&self) -> String {
        format!(
            r#"{{"source":["{}"],"detail-type":["{}"]}}"#,
            self.source, self.detail_type
        )
    }
}

/// Webhook-bearing domain events to the webhook dispatcher's queue.
pub const WEBHOOK_RULE: RuleSpec = RuleSpec {
    logical_id: "WebhookRule",
    name_suffix: "webhooks",
    source: crate::bus::EVENT_SOURCE,
    detail_type: crate::bus::DETAIL_TYPE,
    target: WEBHOOK_QUEUE,
    target_id: "WebhookQueue",
    queue_policy_logical_id: "WebhookQueuePolicy",
};

/// Every rule of the stack.
pub const RULES: [RuleSpec; 1] = [WEBHOOK_RULE];

/// A Secrets Manager secret the stack reads but does not create from its template: its value
/// is made once (by provisioning locally, by an operator on AWS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SecretSpec {
    /// The environment variable that carries the secret's name to functions.
    pub env_var: &'static str,
    /// Suffix of the name (`<prefix>/<suffix>`).
    pub name_suffix: &'static str,
}

impl SecretSpec {
    /// The secret's name under `prefix`.
    pub fn name(&self, prefix: &str) -> String {
        format!("{prefix}/{}", self.name_suffix)
    }
}

/// The RSA private key (PKCS#8 PEM) that signs JWT webhooks; only the dispatcher reads it.
pub const WEBHOOK_PRIVATE_KEY: SecretSpec = SecretSpec {
    env_var: "WEBHOOK_PRIVATE_KEY_SECRET",
    name_suffix: "webhook-private-key",
};

/// Its public key (PEM), served by `GET /webhooks/json_public_key`; only the API reads it.
pub const WEBHOOK_PUBLIC_KEY: SecretSpec = SecretSpec {
    env_var: "WEBHOOK_PUBLIC_KEY_SECRET",
    name_suffix: "webhook-public-key",
};

/// An S3 bucket: private, encrypted, its objects reached through presigned URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketSpec {
    /// The CloudFormation logical id.
    pub logical_id: &'static str,
    /// The environment variable that carries the bucket name to functions.
    pub env_var: &'static str,
    /// Suffix of the physical name (`<prefix>-<suffix>`).
    pub name_suffix: &'static str,
}

/// Invoice documents (PDF), keyed `<organization>/invoices/<invoice id>.pdf`.
pub const DOCUMENTS_BUCKET: BucketSpec = BucketSpec {
    logical_id: "DocumentsBucket",
    env_var: "DOCUMENTS_BUCKET",
    name_suffix: "documents",
};

/// Every bucket of the stack.
pub const BUCKETS: [BucketSpec; 1] = [DOCUMENTS_BUCKET];
