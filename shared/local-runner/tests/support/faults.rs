//! Fault injection at the SDK level: an interceptor that fails chosen calls before they are
//! sent (the call never reaches AWS) or answers them with a throttling error after they were
//! applied (the caller cannot tell whether its write happened: the hardest case to be
//! idempotent against).

use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::{
    box_error::BoxError,
    client::{
        interceptors::{
            Intercept,
            context::{
                BeforeDeserializationInterceptorContextMut, BeforeTransmitInterceptorContextRef,
            },
        },
        orchestrator::{HttpResponse, Metadata},
        runtime_components::RuntimeComponents,
    },
    http::StatusCode,
};
use aws_smithy_types::{body::SdkBody, config_bag::ConfigBag};

/// What to do to a matching call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Fail before sending: nothing reaches the service.
    FailBeforeSend,
    /// Apply the call, then answer `ProvisionedThroughputExceededException`.
    ThrottleAfterApply,
}

#[derive(Debug)]
struct Rule {
    operation: &'static str,
    skip: usize,
    times: usize,
    fault: Fault,
    seen: usize,
}

/// The faults to inject, and how many were.
#[derive(Debug, Default)]
pub struct Faults {
    rules: Mutex<Vec<Rule>>,
    injected: Mutex<usize>,
    calls: Mutex<Vec<String>>,
}

impl Faults {
    /// After letting `skip` calls of `operation` through, injects `fault` into the next `times`.
    pub fn add(&self, operation: &'static str, skip: usize, times: usize, fault: Fault) {
        self.rules
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Rule {
                operation,
                skip,
                times,
                fault,
                seen: 0,
            });
    }

    /// How many faults were injected so far.
    pub fn injected(&self) -> usize {
        *self.injected.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every operation the client called, in order (for failure messages).
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn decide(&self, operation: &str, stage: Fault) -> bool {
        if stage == Fault::FailBeforeSend {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(operation.to_owned());
        }
        let mut rules = self.rules.lock().unwrap_or_else(|e| e.into_inner());
        let mut fire = false;
        // Every rule counts every matching call, whichever fires.
        for rule in rules
            .iter_mut()
            .filter(|r| r.operation == operation && r.fault == stage)
        {
            rule.seen += 1;
            if rule.seen > rule.skip && rule.seen <= rule.skip + rule.times {
                fire = true;
            }
        }
        if fire {
            *self.injected.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
        fire
    }
}

/// The interceptor sharing a [`Faults`] plan.
#[derive(Debug, Clone)]
pub struct Shared(pub Arc<Faults>);

fn operation(cfg: &ConfigBag) -> String {
    cfg.load::<Metadata>()
        .map(|m| m.name().to_owned())
        .unwrap_or_default()
}

impl Intercept for Shared {
    fn name(&self) -> &'static str {
        "FaultInjection"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.decide(&operation(cfg), Fault::FailBeforeSend) {
            return Err("injected fault: the call was not sent".into());
        }
        Ok(())
    }

    fn modify_before_deserialization(
        &self,
        context: &mut BeforeDeserializationInterceptorContextMut<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if self.0.decide(&operation(cfg), Fault::ThrottleAfterApply) {
            let body = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"injected throttling"}"#;
            let mut response = HttpResponse::new(StatusCode::try_from(400)?, SdkBody::from(body));
            response
                .headers_mut()
                .insert("content-type", "application/x-amz-json-1.0");
            *context.response_mut() = response;
        }
        Ok(())
    }
}
