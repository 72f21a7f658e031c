// SPDX-License-Identifier: MPL-2.0
//! `translate_src_%u`: a request pad with a `language-code` of its own (contract §2).

use std::sync::Mutex;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use once_cell::sync::Lazy;

glib::wrapper! {
    /// A translation pad of `sonioxstt`: text in its `language-code`.
    pub struct TranslateSrcPad(ObjectSubclass<imp::TranslateSrcPad>) @extends gst::Pad, gst::Object;
}

impl TranslateSrcPad {
    /// The pad's language as Soniox takes it (`fr-FR` → `fr`), once set.
    pub fn language(&self) -> Option<String> {
        self.imp()
            .language
            .lock()
            .unwrap()
            .as_deref()
            .map(super::settings::primary_language)
            .filter(|l| !l.is_empty())
    }
}

mod imp {
    use super::*;
    use crate::sonioxstt::SonioxStt;

    #[derive(Default)]
    pub struct TranslateSrcPad {
        /// As set (a BCP-47 tag or a language code).
        pub(super) language: Mutex<Option<String>>,
    }

    #[glib::object_subclass]
    impl ObjectSubclass for TranslateSrcPad {
        const NAME: &'static str = "GstSonioxTranslateSrcPad";
        type Type = super::TranslateSrcPad;
        type ParentType = gst::Pad;
    }

    impl ObjectImpl for TranslateSrcPad {
        fn properties() -> &'static [glib::ParamSpec] {
            static PROPERTIES: Lazy<Vec<glib::ParamSpec>> = Lazy::new(|| {
                vec![glib::ParamSpecString::builder("language-code")
                    .nick("Language code")
                    .blurb("The language this pad's text is translated into: a BCP-47 tag (fr-FR) or an ISO 639-1 code (fr); Soniox takes the language (fr). Changed while streaming, it takes effect in the next pause")
                    .mutable_playing()
                    .build()]
            });
            PROPERTIES.as_ref()
        }

        fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
            if pspec.name() != "language-code" {
                return;
            }
            let language = value
                .get::<Option<String>>()
                .expect("type checked by GObject")
                .filter(|l| !l.trim().is_empty());
            let changed = {
                let mut current = self.language.lock().unwrap();
                let changed = *current != language;
                *current = language;
                changed
            };
            if changed {
                if let Some(element) = self.obj().parent().and_downcast::<SonioxStt>() {
                    element.imp().translation_pads_changed();
                }
            }
        }

        fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
            self.language.lock().unwrap().to_value()
        }
    }

    impl GstObjectImpl for TranslateSrcPad {}
    impl PadImpl for TranslateSrcPad {}
}
