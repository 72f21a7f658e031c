// SPDX-License-Identifier: MPL-2.0
//! `SonioxWordMeta` (contract §4 "Meta"): a `GstCustomMeta` on every text buffer with what
//! Soniox said about its words.

/// The custom meta's name, as applications look it up (`gst_buffer_get_custom_meta`).
pub const NAME: &str = "SonioxWordMeta";

/// What one buffer's meta holds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WordMeta {
    /// The lowest confidence of the buffer's tokens.
    pub confidence: Option<f64>,
    pub speaker: Option<String>,
    pub language: Option<String>,
    /// The number bus messages call `session` (the connection).
    pub session: u32,
}

/// Registers the meta (once per process; later calls do nothing).
pub fn register() {
    if !gst::meta::CustomMeta::is_registered(NAME) {
        gst::meta::CustomMeta::register(NAME, &[]);
    }
}

/// Adds the meta to `buffer`.
pub fn attach(buffer: &mut gst::BufferRef, meta: &WordMeta) {
    let Ok(mut custom) = gst::meta::CustomMeta::add(buffer, NAME) else {
        return; // not registered: the plugin registers it before the element exists
    };
    let s = custom.mut_structure();
    if let Some(confidence) = meta.confidence {
        s.set("confidence", confidence);
    }
    if let Some(speaker) = &meta.speaker {
        s.set("speaker", speaker.as_str());
    }
    if let Some(language) = &meta.language {
        s.set("language", language.as_str());
    }
    s.set("session", meta.session);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_meta_reads_back_from_the_buffer() {
        gst::init().unwrap();
        register();
        register();
        let mut buffer = gst::Buffer::from_slice(b"word");
        let meta = WordMeta {
            confidence: Some(0.25),
            speaker: Some("2".into()),
            language: None,
            session: 3,
        };
        attach(buffer.get_mut().unwrap(), &meta);
        let custom = gst::meta::CustomMeta::from_buffer(&buffer, NAME).unwrap();
        let s = custom.structure();
        assert_eq!(s.get::<f64>("confidence").unwrap(), 0.25);
        assert_eq!(s.get::<&str>("speaker").unwrap(), "2");
        assert!(!s.has_field("language"));
        assert_eq!(s.get::<u32>("session").unwrap(), 3);
    }
}
