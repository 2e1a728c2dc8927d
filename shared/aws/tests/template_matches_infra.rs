//! `template.yaml` (what AWS gets) and `billing_aws::infra` (what the local stack provisions)
//! declare the same tables, queues and bus, with the same keys, indexes, TTL, billing mode,
//! recovery, timeouts and redrive; and every function receives each resource's name under the
//! environment variable that its `Config` reads.
//!
//! The template is read as YAML, so CloudFormation's short intrinsics (`!Ref X`, `!GetAtt X.Y`,
//! `!Sub s`) arrive as YAML tags; the long spellings (`Ref:`, `Fn::GetAtt:`, `Fn::Sub:`) are
//! understood too. Each test collects every disagreement before failing, so one run lists them
//! all.

use anyhow::{Context, Result, ensure};
use billing_aws::infra::{
    BUS, QUEUES, QueueSpec, RULES, RuleSpec, SecretSpec, TABLES, TableSpec, WEBHOOK_PRIVATE_KEY,
    WEBHOOK_PUBLIC_KEY,
};
use serde_yaml_ng::{Mapping, Value};
use std::{collections::BTreeSet, path::Path};

/// The parsed template at the workspace root.
fn template() -> Result<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    serde_yaml_ng::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

/// The `Resources` section.
fn resources(template: &Value) -> Result<&Mapping> {
    template
        .get("Resources")
        .and_then(Value::as_mapping)
        .context("template.yaml has no Resources mapping")
}

/// Logical ids of the resources of one CloudFormation type.
fn logical_ids_of_type(template: &Value, resource_type: &str) -> Result<BTreeSet<String>> {
    Ok(resources(template)?
        .iter()
        .filter(|(_, resource)| plain_str(resource.get("Type")) == Some(resource_type))
        .filter_map(|(id, _)| plain_str(Some(id)).map(str::to_owned))
        .collect())
}

/// The `Properties` of a resource, after checking its type.
fn properties<'t>(template: &'t Value, logical_id: &str, resource_type: &str) -> Result<&'t Value> {
    let resource = resources(template)?.get(logical_id).with_context(|| {
        format!("template.yaml declares no resource `{logical_id}` ({resource_type})")
    })?;
    let actual_type = plain_str(resource.get("Type"));
    ensure!(
        actual_type == Some(resource_type),
        "`{logical_id}` is a {actual_type:?} in template.yaml, infra.rs says {resource_type}"
    );
    resource
        .get("Properties")
        .with_context(|| format!("`{logical_id}` has no Properties"))
}

/// A CloudFormation intrinsic function, in either spelling.
#[derive(Debug, PartialEq, Eq)]
enum Intrinsic<'a> {
    Ref(&'a str),
    GetAtt(&'a str, &'a str),
    Sub(&'a str),
}

fn intrinsic(value: &Value) -> Option<Intrinsic<'_>> {
    let (function, argument) = match value {
        Value::Tagged(tagged) => {
            let function = ["Ref", "GetAtt", "Sub"]
                .into_iter()
                .find(|name| tagged.tag == *name)?;
            (function, &tagged.value)
        }
        Value::Mapping(mapping) if mapping.len() == 1 => {
            let (key, argument) = mapping.iter().next()?;
            let function = match plain_str(Some(key))? {
                "Ref" => "Ref",
                "Fn::GetAtt" => "GetAtt",
                "Fn::Sub" => "Sub",
                _ => return None,
            };
            (function, argument)
        }
        _ => return None,
    };
    match (function, argument) {
        ("Ref", Value::String(target)) => Some(Intrinsic::Ref(target)),
        ("GetAtt", Value::String(dotted)) => {
            let (resource, attribute) = dotted.split_once('.')?;
            Some(Intrinsic::GetAtt(resource, attribute))
        }
        ("GetAtt", Value::Sequence(parts)) => match parts.as_slice() {
            [Value::String(resource), Value::String(attribute)] => {
                Some(Intrinsic::GetAtt(resource, attribute))
            }
            _ => None,
        },
        ("Sub", Value::String(pattern)) => Some(Intrinsic::Sub(pattern)),
        ("Sub", Value::Sequence(parts)) => match parts.first() {
            Some(Value::String(pattern)) => Some(Intrinsic::Sub(pattern)),
            _ => None,
        },
        _ => None,
    }
}

/// A plain (untagged) string; `Value::as_str` would also accept `!Sub "..."`, which must not
/// pass for a literal.
fn plain_str(value: Option<&Value>) -> Option<&str> {
    match value? {
        Value::String(text) => Some(text),
        _ => None,
    }
}

/// A plain number, written as a YAML number or as a string (CloudFormation accepts both).
fn plain_u64(value: Option<&Value>) -> Option<u64> {
    match value? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// A plain boolean, written as a YAML boolean or as a string.
fn plain_bool(value: Option<&Value>) -> Option<bool> {
    match value? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => text.parse().ok(),
        _ => None,
    }
}

/// A key schema as `(attribute, key type)` pairs, in order.
type KeySchema = Vec<(String, String)>;

/// What the template says of one global secondary index.
#[derive(Debug, PartialEq, Eq)]
struct IndexShape {
    name: Option<String>,
    key_schema: Option<KeySchema>,
    projection: Option<String>,
}

fn key_schema(value: Option<&Value>) -> Option<KeySchema> {
    value?
        .as_sequence()?
        .iter()
        .map(|key| {
            Some((
                plain_str(key.get("AttributeName"))?.to_owned(),
                plain_str(key.get("KeyType"))?.to_owned(),
            ))
        })
        .collect()
}

fn hash_and_range(hash_key: &str, range_key: &str) -> KeySchema {
    vec![
        (hash_key.to_owned(), "HASH".to_owned()),
        (range_key.to_owned(), "RANGE".to_owned()),
    ]
}

/// The physical name every resource gets: the stack name, a dash, the spec's suffix.
fn stack_scoped_name(suffix: &str) -> String {
    format!("${{AWS::StackName}}-{suffix}")
}

/// Appends `problem` to `problems` unless `actual == expected`.
fn expect_eq<T: PartialEq + std::fmt::Debug>(
    problems: &mut Vec<String>,
    what: String,
    actual: T,
    expected: T,
) {
    if actual != expected {
        problems.push(format!(
            "{what}: template.yaml has {actual:?}, infra.rs wants {expected:?}"
        ));
    }
}

fn table_problems(template: &Value, spec: &TableSpec) -> Result<Vec<String>> {
    let id = spec.logical_id;
    let props = properties(template, id, "AWS::DynamoDB::Table")?;
    let mut problems = Vec::new();

    expect_eq(
        &mut problems,
        format!("{id}.TableName"),
        props.get("TableName").and_then(intrinsic),
        Some(Intrinsic::Sub(&stack_scoped_name(spec.name_suffix))),
    );
    expect_eq(
        &mut problems,
        format!("{id}.BillingMode"),
        plain_str(props.get("BillingMode")),
        Some("PAY_PER_REQUEST"),
    );
    expect_eq(
        &mut problems,
        format!("{id}.KeySchema"),
        key_schema(props.get("KeySchema")),
        Some(hash_and_range(spec.hash_key, spec.range_key)),
    );

    // DynamoDB wants exactly the key attributes defined, every one a string here.
    let defined: Option<BTreeSet<(String, String)>> = props
        .get("AttributeDefinitions")
        .and_then(Value::as_sequence)
        .map(|definitions| {
            definitions
                .iter()
                .filter_map(|d| {
                    Some((
                        plain_str(d.get("AttributeName"))?.to_owned(),
                        plain_str(d.get("AttributeType"))?.to_owned(),
                    ))
                })
                .collect()
        });
    let key_attributes: BTreeSet<(String, String)> = [spec.hash_key, spec.range_key]
        .into_iter()
        .chain(
            spec.indexes
                .iter()
                .flat_map(|(_, hash, range)| [*hash, *range]),
        )
        .map(|name| (name.to_owned(), "S".to_owned()))
        .collect();
    expect_eq(
        &mut problems,
        format!("{id}.AttributeDefinitions"),
        defined,
        Some(key_attributes),
    );

    // Indexes: same names, same keys, projection ALL.
    let declared_indexes: Vec<IndexShape> = props
        .get("GlobalSecondaryIndexes")
        .and_then(Value::as_sequence)
        .map(|indexes| {
            indexes
                .iter()
                .map(|index| IndexShape {
                    name: plain_str(index.get("IndexName")).map(str::to_owned),
                    key_schema: key_schema(index.get("KeySchema")),
                    projection: plain_str(
                        index
                            .get("Projection")
                            .and_then(|p| p.get("ProjectionType")),
                    )
                    .map(str::to_owned),
                })
                .collect()
        })
        .unwrap_or_default();
    let wanted_indexes: Vec<IndexShape> = spec
        .indexes
        .iter()
        .map(|(name, hash, range)| IndexShape {
            name: Some((*name).to_owned()),
            key_schema: Some(hash_and_range(hash, range)),
            projection: Some("ALL".to_owned()),
        })
        .collect();
    expect_eq(
        &mut problems,
        format!("{id}.GlobalSecondaryIndexes"),
        declared_indexes,
        wanted_indexes,
    );

    let ttl = props.get("TimeToLiveSpecification");
    expect_eq(
        &mut problems,
        format!("{id}.TimeToLiveSpecification"),
        (
            plain_str(ttl.and_then(|t| t.get("AttributeName"))),
            plain_bool(ttl.and_then(|t| t.get("Enabled"))),
        ),
        (Some(spec.ttl_attribute), Some(true)),
    );
    expect_eq(
        &mut problems,
        format!("{id}.PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled"),
        plain_bool(
            props
                .get("PointInTimeRecoverySpecification")
                .and_then(|p| p.get("PointInTimeRecoveryEnabled")),
        ),
        Some(true),
    );
    expect_eq(
        &mut problems,
        format!("{id}.SSESpecification.SSEEnabled"),
        plain_bool(
            props
                .get("SSESpecification")
                .and_then(|s| s.get("SSEEnabled")),
        ),
        Some(true),
    );
    Ok(problems)
}

fn queue_problems(template: &Value, spec: &QueueSpec) -> Result<Vec<String>> {
    let id = spec.logical_id;
    let dlq_id = spec.dlq_logical_id;
    let props = properties(template, id, "AWS::SQS::Queue")?;
    let dlq_props = properties(template, dlq_id, "AWS::SQS::Queue")?;
    let mut problems = Vec::new();

    // The spec names its queues (a FIFO name ends in `.fifo`); the stack name is the prefix.
    let stack = "${AWS::StackName}";
    expect_eq(
        &mut problems,
        format!("{id}.QueueName"),
        props.get("QueueName").and_then(intrinsic),
        Some(Intrinsic::Sub(&spec.name(stack))),
    );
    for (queue_id, queue_props) in [(id, props), (dlq_id, dlq_props)] {
        // SQS wants the dead-letter queue of a FIFO queue to be FIFO too.
        expect_eq(
            &mut problems,
            format!("{queue_id}.FifoQueue"),
            plain_bool(queue_props.get("FifoQueue")).unwrap_or(false),
            spec.fifo,
        );
    }
    expect_eq(
        &mut problems,
        format!("{id}.VisibilityTimeout"),
        plain_u64(props.get("VisibilityTimeout")),
        Some(u64::from(spec.visibility_timeout_s)),
    );
    let redrive = props.get("RedrivePolicy");
    expect_eq(
        &mut problems,
        format!("{id}.RedrivePolicy.deadLetterTargetArn"),
        redrive
            .and_then(|r| r.get("deadLetterTargetArn"))
            .and_then(intrinsic),
        Some(Intrinsic::GetAtt(dlq_id, "Arn")),
    );
    expect_eq(
        &mut problems,
        format!("{id}.RedrivePolicy.maxReceiveCount"),
        plain_u64(redrive.and_then(|r| r.get("maxReceiveCount"))),
        Some(u64::from(spec.max_receive_count)),
    );
    expect_eq(
        &mut problems,
        format!("{dlq_id}.QueueName"),
        dlq_props.get("QueueName").and_then(intrinsic),
        Some(Intrinsic::Sub(&spec.dlq_name(stack))),
    );
    expect_eq(
        &mut problems,
        format!("{dlq_id}.MessageRetentionPeriod"),
        plain_u64(dlq_props.get("MessageRetentionPeriod")),
        Some(u64::from(spec.dlq_retention_s)),
    );
    Ok(problems)
}

fn fail_with(problems: &[String]) -> Result<()> {
    ensure!(
        problems.is_empty(),
        "template.yaml and infra.rs disagree:\n  {}",
        problems.join("\n  ")
    );
    Ok(())
}

#[test]
fn every_table_of_infra_is_declared_alike_in_the_template() -> Result<()> {
    // Given the template and the table specs; then each spec's table matches field by field.
    let template = template()?;
    let mut problems = Vec::new();
    for spec in &TABLES {
        problems.extend(table_problems(&template, spec)?);
    }
    fail_with(&problems)
}

#[test]
fn every_queue_of_infra_is_declared_alike_with_its_dead_letter_queue() -> Result<()> {
    let template = template()?;
    let mut problems = Vec::new();
    for spec in &QUEUES {
        problems.extend(queue_problems(&template, spec)?);
    }
    fail_with(&problems)
}

#[test]
fn the_bus_of_infra_is_declared_alike_in_the_template() -> Result<()> {
    let template = template()?;
    let props = properties(&template, BUS.logical_id, "AWS::Events::EventBus")?;
    let mut problems = Vec::new();
    expect_eq(
        &mut problems,
        format!("{}.Name", BUS.logical_id),
        props.get("Name").and_then(intrinsic),
        Some(Intrinsic::Sub(&stack_scoped_name(BUS.name_suffix))),
    );
    fail_with(&problems)
}

#[test]
fn the_template_declares_no_table_queue_or_bus_that_infra_lacks() -> Result<()> {
    // The reverse direction: a resource added to the template only would exist on AWS but
    // never in the local stack, where no test could reach it.
    let template = template()?;
    let known: [(&str, BTreeSet<&str>); 4] = [
        (
            "AWS::DynamoDB::Table",
            TABLES.iter().map(|t| t.logical_id).collect(),
        ),
        (
            "AWS::SQS::Queue",
            QUEUES
                .iter()
                .flat_map(|q| [q.logical_id, q.dlq_logical_id])
                .collect(),
        ),
        ("AWS::Events::EventBus", BTreeSet::from([BUS.logical_id])),
        (
            "AWS::Events::Rule",
            RULES.iter().map(|r| r.logical_id).collect(),
        ),
    ];
    let mut problems = Vec::new();
    for (resource_type, in_infra) in &known {
        for id in logical_ids_of_type(&template, resource_type)? {
            if !in_infra.contains(id.as_str()) {
                problems.push(format!(
                    "{resource_type} `{id}` is in template.yaml but not in infra.rs"
                ));
            }
        }
    }
    fail_with(&problems)
}

/// How each infra resource reaches a function: the variable name and the reference that yields
/// what the variable carries (a table name, a queue URL, a bus name). `!Ref` of a queue is its
/// URL; of a bus, its name.
fn expected_env_bindings() -> Vec<(&'static str, &'static str, Vec<Intrinsic<'static>>)> {
    let tables = TABLES
        .iter()
        .map(|t| (t.logical_id, t.env_var, vec![Intrinsic::Ref(t.logical_id)]));
    let queues = QUEUES.iter().flat_map(|q| {
        [
            (q.logical_id, q.env_var, vec![Intrinsic::Ref(q.logical_id)]),
            (
                q.dlq_logical_id,
                q.dlq_env_var,
                vec![Intrinsic::Ref(q.dlq_logical_id)],
            ),
        ]
    });
    let bus = (
        BUS.logical_id,
        BUS.env_var,
        vec![
            Intrinsic::Ref(BUS.logical_id),
            Intrinsic::GetAtt(BUS.logical_id, "Name"),
        ],
    );
    tables.chain(queues).chain([bus]).collect()
}

/// The logical id an environment value points at, whatever the intrinsic.
fn referenced_resource(value: &Value, candidates: &BTreeSet<&str>) -> Option<String> {
    match intrinsic(value)? {
        Intrinsic::Ref(target) | Intrinsic::GetAtt(target, _) => Some(target.to_owned()),
        Intrinsic::Sub(pattern) => candidates
            .iter()
            .find(|id| {
                pattern.contains(&format!("${{{id}}}")) || pattern.contains(&format!("${{{id}."))
            })
            .map(|id| (*id).to_owned()),
    }
}

#[test]
fn functions_receive_each_resource_under_the_env_var_their_config_reads() -> Result<()> {
    // Given every function's environment (and the Globals' one, which all functions inherit),
    // then a variable pointing at a table, queue or bus has the spec's name and reference, and
    // a variable with a spec's name points at that spec's resource.
    let template = template()?;
    let bindings = expected_env_bindings();
    let infra_ids: BTreeSet<&str> = TABLES
        .iter()
        .map(|t| t.logical_id)
        .chain(QUEUES.iter().flat_map(|q| [q.logical_id, q.dlq_logical_id]))
        .chain([BUS.logical_id])
        .collect();

    let mut environments: Vec<(String, &Mapping)> = Vec::new();
    if let Some(globals) = template
        .get("Globals")
        .and_then(|g| g.get("Function"))
        .and_then(|f| f.get("Environment"))
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
    {
        environments.push(("Globals.Function".to_owned(), globals));
    }
    let functions = logical_ids_of_type(&template, "AWS::Serverless::Function")?;
    ensure!(
        !functions.is_empty(),
        "template.yaml declares no AWS::Serverless::Function"
    );
    for id in &functions {
        let props = properties(&template, id, "AWS::Serverless::Function")?;
        if let Some(variables) = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
        {
            environments.push((id.clone(), variables));
        }
    }

    let mut problems = Vec::new();
    for (owner, variables) in &environments {
        for (name, value) in *variables {
            let name = plain_str(Some(name)).unwrap_or("<non-string name>");
            let target = referenced_resource(value, &infra_ids);
            if let Some(target) = &target {
                if !infra_ids.contains(target.as_str()) {
                    continue; // a parameter or an unrelated resource, e.g. RUST_LOG: !Ref LogLevel
                }
                match bindings.iter().find(|(id, _, _)| id == target) {
                    None => problems.push(format!(
                        "{owner}.{name} points at `{target}`, which has no env var in infra.rs"
                    )),
                    Some((_, env_var, references)) => {
                        if name != *env_var {
                            problems.push(format!(
                                "{owner}.{name} points at `{target}`, whose env var in infra.rs is {env_var}"
                            ));
                        }
                        let reference = intrinsic(value);
                        if !reference.as_ref().is_some_and(|r| references.contains(r)) {
                            problems.push(format!(
                                "{owner}.{name} is {reference:?}; {env_var} must be one of {references:?}"
                            ));
                        }
                    }
                }
            }
            if let Some((id, _, _)) = bindings.iter().find(|(_, env_var, _)| *env_var == name) {
                if target.as_deref() != Some(*id) {
                    problems.push(format!(
                        "{owner}.{name} must reference `{id}`, not {value:?}"
                    ));
                }
            }
        }
    }
    fail_with(&problems)
}

fn rule_problems(template: &Value, rule: &RuleSpec) -> Result<Vec<String>> {
    let id = rule.logical_id;
    let props = properties(template, id, "AWS::Events::Rule")?;
    let mut problems = Vec::new();
    expect_eq(
        &mut problems,
        format!("{id}.Name"),
        props.get("Name").and_then(intrinsic),
        Some(Intrinsic::Sub(&stack_scoped_name(rule.name_suffix))),
    );
    // The bus by name through !GetAtt: the emulator's CloudFormation fails on !Ref of a bus.
    expect_eq(
        &mut problems,
        format!("{id}.EventBusName"),
        props.get("EventBusName").and_then(intrinsic),
        Some(Intrinsic::GetAtt(BUS.logical_id, "Name")),
    );
    let pattern = props.get("EventPattern");
    let strings = |key: &str| -> Option<Vec<String>> {
        pattern?
            .get(key)?
            .as_sequence()?
            .iter()
            .map(|v| plain_str(Some(v)).map(str::to_owned))
            .collect()
    };
    expect_eq(
        &mut problems,
        format!("{id}.EventPattern.source"),
        strings("source"),
        Some(vec![rule.source.to_owned()]),
    );
    expect_eq(
        &mut problems,
        format!("{id}.EventPattern.detail-type"),
        strings("detail-type"),
        Some(vec![rule.detail_type.to_owned()]),
    );
    let targets: Vec<(Option<&str>, Option<Intrinsic<'_>>)> = props
        .get("Targets")
        .and_then(Value::as_sequence)
        .map(|targets| {
            targets
                .iter()
                .map(|t| (plain_str(t.get("Id")), t.get("Arn").and_then(intrinsic)))
                .collect()
        })
        .unwrap_or_default();
    expect_eq(
        &mut problems,
        format!("{id}.Targets"),
        targets,
        vec![(
            Some(rule.target_id),
            Some(Intrinsic::GetAtt(rule.target.logical_id, "Arn")),
        )],
    );

    // The target queue lets this rule, and only through EventBridge, send to it.
    let policy_id = rule.queue_policy_logical_id;
    let policy = properties(template, policy_id, "AWS::SQS::QueuePolicy")?;
    let queues: Vec<Option<Intrinsic<'_>>> = policy
        .get("Queues")
        .and_then(Value::as_sequence)
        .map(|q| q.iter().map(intrinsic).collect())
        .unwrap_or_default();
    expect_eq(
        &mut problems,
        format!("{policy_id}.Queues"),
        queues,
        vec![Some(Intrinsic::Ref(rule.target.logical_id))],
    );
    let grants = policy
        .get("PolicyDocument")
        .and_then(|d| d.get("Statement"))
        .and_then(Value::as_sequence)
        .is_some_and(|statements| {
            statements.iter().any(|s| {
                plain_str(s.get("Effect")) == Some("Allow")
                    && plain_str(s.get("Principal").and_then(|p| p.get("Service")))
                        == Some("events.amazonaws.com")
                    && plain_str(s.get("Action")) == Some("sqs:SendMessage")
                    && s.get("Resource").and_then(intrinsic)
                        == Some(Intrinsic::GetAtt(rule.target.logical_id, "Arn"))
                    && s.get("Condition")
                        .and_then(|c| c.get("ArnEquals"))
                        .and_then(|c| c.get("aws:SourceArn"))
                        .and_then(intrinsic)
                        == Some(Intrinsic::GetAtt(id, "Arn"))
            })
        });
    if !grants {
        problems.push(format!(
            "{policy_id} must allow events.amazonaws.com sqs:SendMessage on {} for aws:SourceArn {id}",
            rule.target.logical_id
        ));
    }
    Ok(problems)
}

#[test]
fn every_rule_of_infra_is_declared_alike_with_its_queue_policy() -> Result<()> {
    // Given the template and the rule specs; then each rule matches the same events on the
    // bus, targets the same queue, and that queue admits the rule.
    let template = template()?;
    let mut problems = Vec::new();
    for rule in &RULES {
        problems.extend(rule_problems(&template, rule)?);
    }
    fail_with(&problems)
}

#[test]
fn functions_receive_each_secret_name_under_the_env_var_their_config_reads() -> Result<()> {
    // Secrets are made outside the template, so functions name them: an env var of a secret
    // spec must be `!Sub ${AWS::StackName}/<suffix>`, the name provisioning uses locally.
    let template = template()?;
    let secrets: [SecretSpec; 2] = [WEBHOOK_PRIVATE_KEY, WEBHOOK_PUBLIC_KEY];
    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for id in logical_ids_of_type(&template, "AWS::Serverless::Function")? {
        let props = properties(&template, &id, "AWS::Serverless::Function")?;
        let Some(variables) = props
            .get("Environment")
            .and_then(|e| e.get("Variables"))
            .and_then(Value::as_mapping)
        else {
            continue;
        };
        for spec in &secrets {
            if let Some(value) = variables.get(spec.env_var) {
                seen.insert(spec.env_var);
                expect_eq(
                    &mut problems,
                    format!("{id}.{}", spec.env_var),
                    intrinsic(value),
                    Some(Intrinsic::Sub(&spec.name("${AWS::StackName}"))),
                );
            }
        }
    }
    for spec in &secrets {
        if !seen.contains(spec.env_var) {
            problems.push(format!("no function reads {}", spec.env_var));
        }
    }
    fail_with(&problems)
}
