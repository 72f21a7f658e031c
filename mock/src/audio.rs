//! Audio formats and the session's audio timeline.

/// Bytes per sample of a raw `audio_format`, or `None` if it is not a raw format.
///
/// Accepts the documented `pcm_*` names, `mulaw`, `alaw`, and (tolerated, UNCONFIRMED in the
/// protocol notes) the same names without `pcm_` (`s16le`) and `pcm_s8le`-style 8-bit names.
/// 24-bit samples are taken as packed 3-byte samples (UNCONFIRMED).
pub(crate) fn bytes_per_sample(format: &str) -> Option<u32> {
    if format == "mulaw" || format == "alaw" {
        return Some(1);
    }
    let core = format.strip_prefix("pcm_").unwrap_or(format);
    let width = match core {
        "s8" | "u8" | "s8le" | "s8be" | "u8le" | "u8be" => 1,
        "s16le" | "s16be" | "u16le" | "u16be" => 2,
        "s24le" | "s24be" | "u24le" | "u24be" => 3,
        "s32le" | "s32be" | "u32le" | "u32be" | "f32le" | "f32be" => 4,
        "f64le" | "f64be" => 8,
        _ => return None,
    };
    Some(width)
}

/// Counts audio bytes and converts them to milliseconds exactly (integer math, rounded down).
#[derive(Clone, Debug)]
pub(crate) struct AudioClock {
    bytes: u64,
    bytes_per_second: u64,
}

impl AudioClock {
    pub fn new(bytes_per_sample: u32, sample_rate: u32, num_channels: u32) -> AudioClock {
        AudioClock {
            bytes: 0,
            bytes_per_second: u64::from(bytes_per_sample)
                * u64::from(sample_rate)
                * u64::from(num_channels),
        }
    }

    pub fn add(&mut self, bytes: usize) {
        self.bytes += bytes as u64;
    }

    /// How long `bytes` of audio last.
    pub fn duration_of(&self, bytes: usize) -> std::time::Duration {
        if self.bytes_per_second == 0 {
            return std::time::Duration::ZERO;
        }
        std::time::Duration::from_secs_f64(bytes as f64 / self.bytes_per_second as f64)
    }

    /// Milliseconds of audio received so far.
    pub fn ms(&self) -> u64 {
        if self.bytes_per_second == 0 {
            return 0;
        }
        (u128::from(self.bytes) * 1000 / u128::from(self.bytes_per_second)) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths() {
        assert_eq!(bytes_per_sample("pcm_s16le"), Some(2));
        assert_eq!(bytes_per_sample("s16le"), Some(2));
        assert_eq!(bytes_per_sample("pcm_f64be"), Some(8));
        assert_eq!(bytes_per_sample("pcm_s24le"), Some(3));
        assert_eq!(bytes_per_sample("pcm_u8"), Some(1));
        assert_eq!(bytes_per_sample("mulaw"), Some(1));
        assert_eq!(bytes_per_sample("alaw"), Some(1));
        assert_eq!(bytes_per_sample("pcm_mulaw"), None);
        assert_eq!(bytes_per_sample("pcm_s16"), None);
        assert_eq!(bytes_per_sample("wav"), None);
    }

    #[test]
    fn clock_is_exact() {
        let mut c = AudioClock::new(2, 16000, 1);
        c.add(3840);
        assert_eq!(c.ms(), 120);
        c.add(31);
        assert_eq!(c.ms(), 120);
        c.add(1);
        assert_eq!(c.ms(), 121);
        let mut c = AudioClock::new(1, 8000, 1);
        c.add(8000);
        assert_eq!(c.ms(), 1000);
        let mut c = AudioClock::new(4, 44100, 2);
        c.add(352_800 * 3);
        assert_eq!(c.ms(), 3000);
        c.add(352);
        assert_eq!(c.ms(), 3000);
        c.add(1);
        assert_eq!(c.ms(), 3001);
    }
}
