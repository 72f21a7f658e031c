// SPDX-License-Identifier: MPL-2.0
//! The one tokio runtime shared by every `sonioxstt` in the process.
//!
//! A fixed pool: two worker threads carry all sessions' network I/O (a media server with
//! many calls does not grow a thread per stream), and nothing here blocks.

use once_cell::sync::Lazy;
use tokio::runtime::{Builder, Runtime};

pub static RUNTIME: Lazy<Runtime> = Lazy::new(|| {
    Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(2)
        .thread_name("soniox-runtime")
        .enable_all()
        .build()
        .expect("the shared tokio runtime must start")
});
