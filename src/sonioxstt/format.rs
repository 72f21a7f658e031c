// SPDX-License-Identifier: MPL-2.0
//! Sink caps and their Soniox `audio_format` (contract §2). No conversion: the bytes go to
//! Soniox as they are.

use gst_audio::AudioFormat as Raw;

/// Raw formats in preference order (S16LE first), with their Soniox names.
const RAW_FORMATS: &[(Raw, &str)] = &[
    (Raw::S16le, "pcm_s16le"),
    (Raw::S16be, "pcm_s16be"),
    (Raw::S32le, "pcm_s32le"),
    (Raw::S32be, "pcm_s32be"),
    (Raw::F32le, "pcm_f32le"),
    (Raw::F32be, "pcm_f32be"),
    (Raw::F64le, "pcm_f64le"),
    (Raw::F64be, "pcm_f64be"),
    (Raw::S8, "pcm_s8"),
    (Raw::U8, "pcm_u8"),
];

const MIN_RATE: i32 = 8000;
const MAX_RATE: i32 = 48000;

/// The audio a session carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioFormat {
    pub soniox: &'static str,
    pub rate: u32,
    pub channels: u32,
    pub bytes_per_frame: u32,
}

impl AudioFormat {
    pub fn bytes_per_second(&self) -> u64 {
        u64::from(self.rate) * u64::from(self.bytes_per_frame)
    }

    pub fn from_caps(caps: &gst::CapsRef) -> Result<AudioFormat, String> {
        let s = caps.structure(0).ok_or("empty caps")?;
        let rate = s
            .get::<i32>("rate")
            .map_err(|_| format!("no rate in {caps}"))?;
        let channels = s
            .get::<i32>("channels")
            .map_err(|_| format!("no channels in {caps}"))?;
        if channels != 1 || !(MIN_RATE..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "unsupported caps {caps}: mono at 8000–48000 Hz is required"
            ));
        }
        let (soniox, bytes_per_frame) = match s.name().as_str() {
            "audio/x-mulaw" => ("mulaw", 1),
            "audio/x-alaw" => ("alaw", 1),
            "audio/x-raw" => {
                let info =
                    gst_audio::AudioInfo::from_caps(caps).map_err(|e| format!("{e}: {caps}"))?;
                if info.layout() != gst_audio::AudioLayout::Interleaved {
                    return Err(format!("non-interleaved audio is not supported: {caps}"));
                }
                let name = RAW_FORMATS
                    .iter()
                    .find(|(raw, _)| *raw == info.format())
                    .map(|(_, name)| *name)
                    .ok_or_else(|| format!("unsupported sample format {}", info.format()))?;
                (name, info.bpf())
            }
            other => return Err(format!("unsupported media type {other}")),
        };
        Ok(AudioFormat {
            soniox,
            rate: rate as u32,
            channels: channels as u32,
            bytes_per_frame,
        })
    }
}

/// The sink pad's template caps.
pub fn sink_caps() -> gst::Caps {
    let formats = gst::List::new(RAW_FORMATS.iter().map(|(raw, _)| raw.to_str()));
    let rates = gst::IntRange::new(MIN_RATE, MAX_RATE);
    let mut caps = gst::Caps::builder("audio/x-raw")
        .field("format", formats)
        .field("layout", "interleaved")
        .field("rate", rates)
        .field("channels", 1)
        .build();
    {
        let caps = caps.get_mut().expect("new caps are writable");
        for name in ["audio/x-mulaw", "audio/x-alaw"] {
            caps.append_structure(
                gst::Structure::builder(name)
                    .field("rate", rates)
                    .field("channels", 1)
                    .build(),
            );
        }
    }
    caps
}

/// The src pad's caps.
pub fn src_caps() -> gst::Caps {
    gst::Caps::builder("text/x-raw")
        .field("format", "utf8")
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format_of(caps: &str) -> Result<AudioFormat, String> {
        gst::init().unwrap();
        AudioFormat::from_caps(&caps.parse::<gst::Caps>().unwrap())
    }

    #[test]
    fn maps_caps_to_soniox_formats() {
        let f =
            format_of("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=1").unwrap();
        assert_eq!(
            (f.soniox, f.rate, f.channels, f.bytes_per_frame),
            ("pcm_s16le", 16000, 1, 2)
        );
        assert_eq!(f.bytes_per_second(), 32000);
        let f =
            format_of("audio/x-raw,format=F32LE,layout=interleaved,rate=44100,channels=1").unwrap();
        assert_eq!((f.soniox, f.bytes_per_frame), ("pcm_f32le", 4));
        let f = format_of("audio/x-mulaw,rate=8000,channels=1").unwrap();
        assert_eq!((f.soniox, f.rate, f.bytes_per_frame), ("mulaw", 8000, 1));
        let f = format_of("audio/x-alaw,rate=8000,channels=1").unwrap();
        assert_eq!(f.soniox, "alaw");
        let f = format_of("audio/x-raw,format=U8,layout=interleaved,rate=8000,channels=1").unwrap();
        assert_eq!(f.soniox, "pcm_u8");
    }

    #[test]
    fn rejects_what_soniox_cannot_take_unconverted() {
        assert!(
            format_of("audio/x-raw,format=S16LE,layout=interleaved,rate=16000,channels=2").is_err()
        );
        assert!(
            format_of("audio/x-raw,format=S24LE,layout=interleaved,rate=16000,channels=1").is_err()
        );
        assert!(format_of("audio/x-mulaw,rate=4000,channels=1").is_err());
    }

    #[test]
    fn template_lists_s16le_first() {
        gst::init().unwrap();
        let caps = sink_caps();
        assert_eq!(caps.size(), 3);
        let formats = caps
            .structure(0)
            .unwrap()
            .get::<gst::List>("format")
            .unwrap();
        assert_eq!(formats.first().unwrap().get::<&str>().unwrap(), "S16LE");
    }
}
