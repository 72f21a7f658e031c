// SPDX-License-Identifier: MPL-2.0
//! The file uploaded in `mode=async`: the raw audio the element received, in a WAV container
//! (written by `hound`). WAV holds little-endian PCM: big-endian samples are swapped and
//! unsigned 8-bit ones re-centred (both lossless), 64-bit floats become 32-bit ones, and
//! μ-law and A-law (G.711) samples are expanded to the 16-bit values they stand for (exact:
//! every G.711 code is a 16-bit value), which any WAV reader takes.

use bytes::Bytes;

/// A WAV file being written as the audio comes: each chunk goes into the container at once
/// (and may be dropped), so the audio is held once, as the file.
pub struct WavBuilder {
    writer: hound::WavWriter<Shared>,
    file: Shared,
    format: &'static str,
    width: usize,
    /// A sample cut between two chunks, put back together.
    carry: Vec<u8>,
}

impl WavBuilder {
    pub fn new(format: &'static str, rate: u32, channels: u16) -> Result<WavBuilder, String> {
        let (bits, float, width) = match format {
            "pcm_s8" | "pcm_u8" => (8, false, 1),
            "pcm_s16le" | "pcm_s16be" => (16, false, 2),
            "pcm_s32le" | "pcm_s32be" => (32, false, 4),
            "pcm_f32le" | "pcm_f32be" => (32, true, 4),
            "pcm_f64le" | "pcm_f64be" => (32, true, 8),
            "mulaw" | "alaw" => (16, false, 1),
            other => return Err(format!("mode=async cannot upload {other} audio")),
        };
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let file = Shared::default();
        let writer = hound::WavWriter::new(file.clone(), spec).map_err(|e| e.to_string())?;
        Ok(WavBuilder {
            writer,
            file,
            format,
            width,
            carry: Vec::with_capacity(width),
        })
    }

    /// Appends raw audio.
    pub fn push(&mut self, mut data: &[u8]) -> Result<(), String> {
        let error = |e: hound::Error| e.to_string();
        if !self.carry.is_empty() {
            let take = (self.width - self.carry.len()).min(data.len());
            self.carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.carry.len() == self.width {
                write(&mut self.writer, self.format, &self.carry).map_err(error)?;
                self.carry.clear();
            }
        }
        let whole = data.len() - data.len() % self.width;
        write(&mut self.writer, self.format, &data[..whole]).map_err(error)?;
        self.carry.extend_from_slice(&data[whole..]);
        Ok(())
    }

    /// The file's size so far (header included).
    pub fn file_size(&self) -> u64 {
        self.file.0.lock().unwrap().get_ref().len() as u64
    }

    /// The finished file.
    pub fn finish(self) -> Result<Bytes, String> {
        self.writer.finalize().map_err(|e| e.to_string())?;
        let file = std::mem::take(&mut *self.file.0.lock().unwrap());
        Ok(Bytes::from(file.into_inner()))
    }
}

/// The file in memory, shared with the writer (which keeps its own handle until it is
/// finalized).
#[derive(Clone, Default)]
struct Shared(std::sync::Arc<std::sync::Mutex<std::io::Cursor<Vec<u8>>>>);

impl std::io::Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl std::io::Seek for Shared {
    fn seek(&mut self, to: std::io::SeekFrom) -> std::io::Result<u64> {
        self.0.lock().unwrap().seek(to)
    }
}

/// Writes whole samples of `format`.
fn write<W: std::io::Write + std::io::Seek>(
    writer: &mut hound::WavWriter<W>,
    format: &str,
    data: &[u8],
) -> Result<(), hound::Error> {
    match format {
        "pcm_s8" => data.iter().try_for_each(|&b| writer.write_sample(b as i8)),
        "pcm_u8" => data
            .iter()
            .try_for_each(|&b| writer.write_sample((b as i16 - 128) as i8)),
        "pcm_s16le" => data
            .chunks_exact(2)
            .try_for_each(|s| writer.write_sample(i16::from_le_bytes([s[0], s[1]]))),
        "pcm_s16be" => data
            .chunks_exact(2)
            .try_for_each(|s| writer.write_sample(i16::from_be_bytes([s[0], s[1]]))),
        "pcm_s32le" => data.chunks_exact(4).try_for_each(|s| {
            writer.write_sample(i32::from_le_bytes(s.try_into().expect("4 bytes")))
        }),
        "pcm_s32be" => data.chunks_exact(4).try_for_each(|s| {
            writer.write_sample(i32::from_be_bytes(s.try_into().expect("4 bytes")))
        }),
        "pcm_f32le" => data.chunks_exact(4).try_for_each(|s| {
            writer.write_sample(f32::from_le_bytes(s.try_into().expect("4 bytes")))
        }),
        "pcm_f32be" => data.chunks_exact(4).try_for_each(|s| {
            writer.write_sample(f32::from_be_bytes(s.try_into().expect("4 bytes")))
        }),
        "mulaw" => data
            .iter()
            .try_for_each(|&b| writer.write_sample(mulaw_to_linear(b))),
        "alaw" => data
            .iter()
            .try_for_each(|&b| writer.write_sample(alaw_to_linear(b))),
        "pcm_f64le" => data.chunks_exact(8).try_for_each(|s| {
            writer.write_sample(f64::from_le_bytes(s.try_into().expect("8 bytes")) as f32)
        }),
        _ => data.chunks_exact(8).try_for_each(|s| {
            writer.write_sample(f64::from_be_bytes(s.try_into().expect("8 bytes")) as f32)
        }),
    }
}

/// The 16-bit value of a G.711 μ-law code (ITU-T G.711: the bits are stored inverted; a
/// 4-bit mantissa over a 3-bit exponent, biased by 0x84).
fn mulaw_to_linear(code: u8) -> i16 {
    let code = !code;
    let exponent = (code >> 4) & 0x07;
    let magnitude = ((i16::from(code & 0x0f) << 3) + 0x84) << exponent;
    if code & 0x80 != 0 {
        0x84 - magnitude
    } else {
        magnitude - 0x84
    }
}

/// The 16-bit value of a G.711 A-law code (ITU-T G.711: even bits inverted; segment 0 is
/// linear, each further one doubles the step).
fn alaw_to_linear(code: u8) -> i16 {
    let code = code ^ 0x55;
    let segment = (code >> 4) & 0x07;
    let mantissa = i16::from(code & 0x0f) << 4;
    let magnitude = match segment {
        0 => mantissa + 8,
        _ => (mantissa + 0x108) << (segment - 1),
    };
    if code & 0x80 != 0 {
        magnitude
    } else {
        -magnitude
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV file of `chunks` of raw audio in Soniox format `format` (`pcm_s16le`, …).
    fn wav_file(
        format: &'static str,
        rate: u32,
        channels: u16,
        chunks: Vec<Bytes>,
    ) -> Result<Bytes, String> {
        let mut builder = WavBuilder::new(format, rate, channels)?;
        for chunk in chunks {
            builder.push(&chunk)?;
        }
        builder.finish()
    }

    #[test]
    fn s16le_audio_is_kept_as_it_came_inside_the_container() {
        let audio: Vec<u8> = (0..3200u32).map(|i| (i * 7) as u8).collect();
        // Cut inside a sample (1001 bytes), as no chunk should be, and still whole.
        let chunks = vec![
            Bytes::from(audio[..1001].to_vec()),
            Bytes::from(audio[1001..].to_vec()),
        ];
        let file = wav_file("pcm_s16le", 16_000, 1, chunks).unwrap();
        assert_eq!(&file[..4], b"RIFF");
        assert_eq!(
            &file[file.len() - audio.len()..],
            &audio[..],
            "the data chunk is the input"
        );
        let reader = hound::WavReader::new(std::io::Cursor::new(file.to_vec())).unwrap();
        assert_eq!(reader.spec().sample_rate, 16_000);
        assert_eq!(reader.duration(), 1600);
    }

    #[test]
    fn big_endian_and_unsigned_samples_become_wav_samples() {
        let be = wav_file(
            "pcm_s16be",
            8000,
            1,
            vec![Bytes::from_static(&[0x01, 0x02])],
        )
        .unwrap();
        assert_eq!(&be[be.len() - 2..], &[0x02, 0x01]);
        let u8 = wav_file("pcm_u8", 8000, 1, vec![Bytes::from_static(&[200])]).unwrap();
        let mut reader = hound::WavReader::new(std::io::Cursor::new(u8.to_vec())).unwrap();
        assert_eq!(reader.samples::<i8>().next().unwrap().unwrap(), 72);
        assert!(wav_file("opus", 8000, 1, vec![])
            .unwrap_err()
            .contains("opus"));
    }

    #[test]
    fn g711_codes_become_the_16_bit_values_they_stand_for() {
        // Values from ITU-T G.711's tables: the two ends and silence.
        assert_eq!(mulaw_to_linear(0xff), 0);
        assert_eq!(mulaw_to_linear(0x7f), 0);
        assert_eq!(mulaw_to_linear(0x00), -32124);
        assert_eq!(mulaw_to_linear(0x80), 32124);
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(alaw_to_linear(0x2a), -32256);
        let file = wav_file("mulaw", 8000, 1, vec![Bytes::from_static(&[0x80, 0xff])]).unwrap();
        let mut reader = hound::WavReader::new(std::io::Cursor::new(file.to_vec())).unwrap();
        assert_eq!(reader.spec().bits_per_sample, 16);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert_eq!(samples, [32124, 0]);
    }
}
