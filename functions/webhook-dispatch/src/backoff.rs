//! When a failed webhook is tried again: a delay that doubles with each receive of its message.

use std::time::Duration;

/// Exponential backoff: `first` after the first failed attempt, then twice the previous delay,
/// never more than `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after the first failed attempt.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
}

impl Backoff {
    /// Production: 30 s, 1 min, 2 min, ... up to 1 h. With the webhook queue's 8 receives a
    /// failing endpoint is tried for about two hours before the message parks in the DLQ
    /// (lago-api tries 3 times).
    pub const DEFAULT: Backoff = Backoff {
        first: Duration::from_secs(30),
        max: Duration::from_secs(60 * 60),
    };

    /// No delay: a failed message is visible again at once (tests, and a local stack whose
    /// poller decides the retry delay itself).
    pub const NONE: Backoff = Backoff {
        first: Duration::ZERO,
        max: Duration::ZERO,
    };

    /// The delay before the next attempt of a message received `receive_count` times
    /// (SQS's `ApproximateReceiveCount`, 1 on the first receive).
    pub fn delay(&self, receive_count: u32) -> Duration {
        let doublings = receive_count.saturating_sub(1).min(31);
        self.first
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.max)
            .min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_with_each_receive_up_to_the_maximum() {
        let b = Backoff::DEFAULT;
        let secs: Vec<u64> = (1..=9).map(|n| b.delay(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(
            b.delay(0),
            Duration::from_secs(30),
            "an absent count is a first receive"
        );
        assert_eq!(b.delay(u32::MAX), b.max, "no overflow");
        assert_eq!(Backoff::NONE.delay(5), Duration::ZERO);
    }
}
