// SPDX-License-Identifier: MPL-2.0
//! `mode=async`: whole files through Soniox's async REST API (contract §7a), free of
//! GStreamer: the REST calls ([`rest`]) and one job's life ([`job`]).

pub mod job;
pub mod rest;
pub mod task;
pub mod wav;
