// SPDX-License-Identifier: MPL-2.0
//! Fresh keys from the application: the `request-api-key` signal as a [`KeySource`].

use gst::glib;
use gst::prelude::*;

use crate::soniox::credentials::KeySource;

pub const SIGNAL: &str = "request-api-key";

/// Emits `request-api-key` on the element, when a handler is connected.
pub struct SignalKeys {
    element: glib::WeakRef<super::SonioxStt>,
}

impl SignalKeys {
    pub fn new(element: &super::SonioxStt) -> SignalKeys {
        SignalKeys {
            element: element.downgrade(),
        }
    }
}

impl KeySource for SignalKeys {
    fn fetches(&self) -> bool {
        let Some(element) = self.element.upgrade() else {
            return false;
        };
        glib::subclass::SignalId::lookup(SIGNAL, super::SonioxStt::static_type())
            .is_some_and(|id| glib::signal::signal_has_handler_pending(&element, id, None, false))
    }

    fn fetch(&self, session: u32) -> Option<String> {
        let element = self.element.upgrade()?;
        element.emit_by_name::<Option<String>>(SIGNAL, &[&session])
    }
}
