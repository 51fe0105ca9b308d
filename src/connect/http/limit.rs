//! Client-side rate limiting: a token bucket for requests per window and a
//! semaphore for requests in flight. Uses tokio's clock so tests can pause it.

use std::sync::Arc;

use tokio::sync::{Mutex, OwnedSemaphorePermit, Semaphore};
use tokio::time::{Duration, Instant, sleep};

use super::profile::RateLimit;

pub struct Limiter {
    bucket: Mutex<(f64, Instant)>,
    per_second: f64,
    burst: f64,
    parallel: Arc<Semaphore>,
    slots: usize,
}

impl Limiter {
    pub fn new(limit: Option<RateLimit>) -> Self {
        let (per_second, burst, parallel) = match limit {
            Some(l) => (
                l.requests as f64 / l.per_seconds.max(1e-3),
                l.requests as f64,
                l.parallel.max(1),
            ),
            None => (f64::INFINITY, f64::INFINITY, 16),
        };
        Self {
            bucket: Mutex::new((burst.min(1e9), Instant::now())),
            per_second,
            burst,
            parallel: Arc::new(Semaphore::new(parallel)),
            slots: parallel,
        }
    }

    /// How many requests may be in flight at once.
    pub fn parallel(&self) -> usize {
        self.slots
    }

    /// Wait for a token and a free slot.
    pub async fn acquire(&self) -> OwnedSemaphorePermit {
        if self.per_second.is_finite() {
            loop {
                let wait = {
                    let mut b = self.bucket.lock().await;
                    let now = Instant::now();
                    let refill = now.duration_since(b.1).as_secs_f64() * self.per_second;
                    b.0 = (b.0 + refill).min(self.burst);
                    b.1 = now;
                    if b.0 >= 1.0 {
                        b.0 -= 1.0;
                        None
                    } else {
                        Some(Duration::from_secs_f64((1.0 - b.0) / self.per_second))
                    }
                };
                match wait {
                    None => break,
                    Some(w) => sleep(w).await,
                }
            }
        }
        self.parallel
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_bucket_spaces_requests_out() {
        let l = Limiter::new(Some(RateLimit {
            requests: 45,
            per_seconds: 3.0,
            parallel: 5,
        }));
        let start = Instant::now();
        for _ in 0..90 {
            drop(l.acquire().await);
        }
        // 45 at once, the next 45 at 15 per second.
        let took = start.elapsed().as_secs_f64();
        assert!((2.9..3.2).contains(&took), "took {took}s");
    }
}
