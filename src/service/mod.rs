//! Running as a system service: systemd readiness, status and watchdog notifications.

pub mod notify;

pub use notify::{
    notify, notify_ready, notify_status, notify_stopping, start_watchdog, watchdog_period,
};
