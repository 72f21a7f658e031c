// SPDX-License-Identifier: MPL-2.0
//! Subtitle files as a viewer sees them: their cues, and the check that they are the sample's
//! sentences.

use std::path::PathBuf;

use super::{launch, run, sample_script, sample_wav, server, Run, KEY, WAIT};

/// A cue as a subtitle file shows it: start and end in ms, and its lines.
#[derive(Debug)]
pub struct FileCue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub lines: Vec<String>,
}

/// "00:00:04,054" or "00:00:04.054" → 4054.
pub fn parse_time(time: &str) -> u64 {
    let time = time.trim().replace(',', ".");
    let (hms, millis) = time.split_once('.').unwrap();
    let parts: Vec<u64> = hms.split(':').map(|p| p.parse().unwrap()).collect();
    let seconds = parts.iter().fold(0, |acc, p| acc * 60 + p);
    seconds * 1000 + millis.parse::<u64>().unwrap()
}

/// The cues of an SRT or WebVTT file.
pub fn parse_cues(text: &str) -> Vec<FileCue> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter_map(|block| {
            let mut lines = block.lines().skip_while(|l| !l.contains("-->"));
            let (start, end) = lines.next()?.split_once("-->")?;
            // WebVTT may put cue settings after the end time.
            let end = end.split_whitespace().next()?;
            Some(FileCue {
                start_ms: parse_time(start),
                end_ms: parse_time(end),
                lines: lines
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        })
        .collect()
}

/// The sample through `sonioxstt pace=0 STT_EXTRA ! CHAIN ! filesink` (CHAIN ends in a subtitle
/// encoder): the file's cues and the run.
pub fn sample_to_file(stt_extra: &str, chain: &str) -> (Vec<FileCue>, Run) {
    let server = server(sample_script(), |_| {});
    let out = temp_file(&format!("{}.txt", chain.replace([' ', '!', '='], "")));
    let (pipeline, _stt) = launch(&format!(
        "filesrc location={} ! wavparse ! sonioxstt name=stt pace=0 url={} api-key={KEY} \
         {stt_extra} ! {chain} ! filesink location={}",
        sample_wav().display(),
        server.url(),
        out.display()
    ));
    let run = run(&pipeline, WAIT);
    assert!(run.eos, "{:?}", run.error());
    let text = std::fs::read_to_string(&out).unwrap();
    let _ = std::fs::remove_file(&out);
    (parse_cues(&text), run)
}

pub fn temp_file(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sonioxstt-{}-{name}", std::process::id()))
}

/// Each cue is one of the script's sentences, timed by its first and last word within 1 ms,
/// in at most two lines of at most 42 characters, in order, none overlapping, no word lost.
pub fn assert_cues_are_the_sentences(cues: &[FileCue]) {
    assert_cues_hold_the_sentences(cues);
    for cue in cues {
        assert!(cue.lines.len() <= 2, "{cue:?}");
        assert!(cue.lines.iter().all(|l| l.chars().count() <= 42), "{cue:?}");
    }
}

/// Each cue is one of the script's sentences, timed by its first and last word within 1 ms,
/// in order, none overlapping, no word lost (however its lines are broken).
pub fn assert_cues_hold_the_sentences(cues: &[FileCue]) {
    let script = sample_script();
    assert_eq!(
        cues.len(),
        script.utterances.len(),
        "one cue per sentence: {cues:?}"
    );
    for (cue, sentence) in cues.iter().zip(&script.utterances) {
        assert_eq!(cue.lines.join(" "), sentence.text());
        let first = sentence.words.first().unwrap();
        let last = sentence.words.last().unwrap();
        assert!(
            cue.start_ms.abs_diff(first.start_ms) <= 1,
            "{cue:?} vs {first:?}"
        );
        assert!(cue.end_ms.abs_diff(last.end_ms) <= 1, "{cue:?} vs {last:?}");
    }
    for pair in cues.windows(2) {
        assert!(pair[0].end_ms <= pair[1].start_ms, "overlap: {pair:?}");
    }
}
