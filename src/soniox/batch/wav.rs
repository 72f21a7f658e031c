// SPDX-License-Identifier: MPL-2.0
//! The file uploaded in `mode=async`: the raw audio the element received, in a WAV container
//! (written by `hound`). WAV holds little-endian PCM: big-endian samples are swapped and
//! unsigned 8-bit ones re-centred (both lossless), 64-bit floats become 32-bit ones.

use bytes::Bytes;

/// A WAV file of `chunks` of raw audio in Soniox format `format` (`pcm_s16le`, …). Each
/// chunk is dropped once written, so the audio is held about once, not twice.
pub fn wav_file(
    format: &str,
    rate: u32,
    channels: u16,
    chunks: Vec<Bytes>,
) -> Result<Bytes, String> {
    let (bits, float, width) = match format {
        "pcm_s8" | "pcm_u8" => (8, false, 1),
        "pcm_s16le" | "pcm_s16be" => (16, false, 2),
        "pcm_s32le" | "pcm_s32be" => (32, false, 4),
        "pcm_f32le" | "pcm_f32be" => (32, true, 4),
        "pcm_f64le" | "pcm_f64be" => (32, true, 8),
        other => return Err(format!("mode=async takes PCM audio, not {other}")),
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
    let total: usize = chunks.iter().map(Bytes::len).sum();
    let mut out = std::io::Cursor::new(Vec::with_capacity(total * bits as usize / 8 / width + 64));
    let mut writer = hound::WavWriter::new(&mut out, spec).map_err(|e| e.to_string())?;
    let error = |e: hound::Error| e.to_string();
    // A sample cut between two chunks is put back together.
    let mut carry: Vec<u8> = Vec::with_capacity(width);
    for chunk in chunks {
        let mut data = &chunk[..];
        if !carry.is_empty() {
            let take = (width - carry.len()).min(data.len());
            carry.extend_from_slice(&data[..take]);
            data = &data[take..];
            if carry.len() == width {
                write(&mut writer, format, &carry).map_err(error)?;
                carry.clear();
            }
        }
        let whole = data.len() - data.len() % width;
        write(&mut writer, format, &data[..whole]).map_err(error)?;
        carry.extend_from_slice(&data[whole..]);
    }
    writer.finalize().map_err(error)?;
    Ok(Bytes::from(out.into_inner()))
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
        "pcm_f64le" => data.chunks_exact(8).try_for_each(|s| {
            writer.write_sample(f64::from_le_bytes(s.try_into().expect("8 bytes")) as f32)
        }),
        _ => data.chunks_exact(8).try_for_each(|s| {
            writer.write_sample(f64::from_be_bytes(s.try_into().expect("8 bytes")) as f32)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(wav_file("mulaw", 8000, 1, vec![])
            .unwrap_err()
            .contains("mulaw"));
    }
}
