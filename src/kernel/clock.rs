//! The one clock that expiry, deadlines and timestamps read. A server started with
//! `--test-clock` lets tests shift it; otherwise it is the system clock.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};

#[derive(Clone, Default)]
pub struct Clock {
    /// Microseconds added to the system time; only ever non-zero with `--test-clock`.
    offset_us: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::microseconds(self.offset_us.load(Ordering::Relaxed))
    }

    /// Moves the clock so that it now reads `to`, and keeps running from there.
    pub fn set(&self, to: DateTime<Utc>) {
        let offset = (to - Utc::now()).num_microseconds().unwrap_or(0);
        self.offset_us.store(offset, Ordering::Relaxed);
    }

    /// Today's date in UTC.
    pub fn today(&self) -> chrono::NaiveDate {
        self.now().date_naive()
    }
}
