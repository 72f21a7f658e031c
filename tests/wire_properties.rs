// SPDX-License-Identifier: MPL-2.0
//! Property tests of the path from the wire to timestamps, free of GStreamer: whatever text
//! or JSON arrives, parsing and checking never panic; whatever token sequence gets through
//! the check, the words it makes map inside the input's timestamps, in order, none twice.

use gstsoniox::soniox::check::Checker;
use gstsoniox::soniox::event::Results;
use gstsoniox::soniox::protocol::ServerMessage;
use gstsoniox::transcript::timeline::Timeline;
use gstsoniox::transcript::words::{Assembled, Word, WordAssembler};
use proptest::prelude::*;
use serde_json::{json, Value};

/// 16 kHz S16 mono.
const BPS: u64 = 32_000;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_text_is_parsed_and_checked_without_panicking(text in any::<String>(), sent_ms in any::<u64>()) {
        if let Ok(message) = ServerMessage::parse(&text) {
            let _ = Checker::new().check(message, sent_ms % 10_000_000, false);
        }
    }

    #[test]
    fn any_json_near_the_schema_is_parsed_and_checked_without_panicking(
        value in message_like(),
        sent_ms in 0u64..100_000,
        ended in any::<bool>(),
    ) {
        let text = value.to_string();
        if let Ok(message) = ServerMessage::parse(&text) {
            if let Ok(checked) = Checker::new().check(message, sent_ms, ended) {
                for token in &checked.tokens {
                    prop_assert!(token.start_ms.unwrap_or(0) <= sent_ms);
                    prop_assert!(token.end_ms.unwrap_or(0) <= sent_ms);
                }
                prop_assert!(checked.final_audio_proc_ms.unwrap_or(0) <= sent_ms);
            }
        }
    }

    #[test]
    fn words_that_pass_the_check_map_inside_the_input_in_order_and_once(
        chunks in input(),
        messages in prop::collection::vec(prop::collection::vec(token_like(), 0..8), 1..30),
        drain_timed_out in any::<bool>(),
    ) {
        let messages = messages.into_iter().map(|tokens| json!({ "tokens": tokens })).collect();
        words_stay_inside_the_input(chunks, messages, drain_timed_out)?;
    }

    #[test]
    fn streams_in_time_order_with_the_odd_fault_map_inside_the_input_in_order_and_once(
        chunks in input(),
        messages in ordered_messages(),
        drain_timed_out in any::<bool>(),
    ) {
        words_stay_inside_the_input(chunks, messages, drain_timed_out)?;
    }
}

/// Chunks of audio: (length in frames, 0 = a jump in the timestamps, how far it jumps); up
/// to a minute or so.
fn input() -> impl Strategy<Value = Vec<(u64, u64, u64)>> {
    prop::collection::vec((1u64..48_000, 0u64..3, 0u64..20_000), 1..40)
}

/// Feeds `messages` through the check and the word assembler against audio of `chunks`, and
/// checks every word that comes out.
fn words_stay_inside_the_input(
    chunks: Vec<(u64, u64, u64)>,
    messages: Vec<Value>,
    drain_timed_out: bool,
) -> Result<(), TestCaseError> {
    // The input: chunks of audio whose timestamps run forward, sometimes jumping.
    let mut timeline = Timeline::new(BPS);
    let mut pts = 1_000_000_000u64;
    let first_pts = pts;
    for (frames, jumps, jump_ms) in chunks {
        let len = frames * 2;
        if jumps == 0 {
            pts += jump_ms * 1_000_000;
        }
        timeline.record(Some(pts), jumps == 0, len);
        pts += len * 1_000_000_000 / BPS;
    }
    let input_end = pts;
    let sent_ms = timeline.recorded_ms();

    let mut checker = Checker::new();
    let mut assembler = WordAssembler::new();
    let mut out = Vec::new();
    for message in messages {
        let Ok(message) = ServerMessage::parse(&message.to_string()) else {
            continue;
        };
        // A refused message breaks the connection: what came before it stands.
        let Ok(message) = checker.check(message, sent_ms, false) else {
            break;
        };
        // The connection maps the times once, through its table.
        let results = Results::map(&message, &timeline, timeline.origin());
        out.extend(assembler.feed(&results.tokens).out);
    }
    out.extend(if drain_timed_out {
        assembler.finish_with_interim()
    } else {
        assembler.finish()
    });
    let words: Vec<Word> = out
        .into_iter()
        .filter_map(|a| match a {
            Assembled::Word(word) => Some(word),
            _ => None,
        })
        .collect();

    let mut previous: Option<(u64, &Word)> = None;
    for word in &words {
        for ns in [word.pts, word.end].into_iter().flatten() {
            prop_assert!(
                (first_pts..=input_end).contains(&ns),
                "{word:?} maps to {ns}, outside the input"
            );
        }
        if let (Some(start), Some(end)) = (word.pts, word.end) {
            prop_assert!(start <= end, "{word:?}");
        }
        if let (Some(pts), Some((previous_pts, previous_word))) = (word.pts, previous) {
            prop_assert!(pts >= previous_pts, "{word:?} before {previous_word:?}");
            // Two words of no length at one instant ("z z" in a token of 0 ms) are two
            // words, not one twice: only a word with a length is told apart by its times.
            prop_assert!(
                word != previous_word || word.pts == word.end,
                "{word:?} twice"
            );
        }
        if let Some(pts) = word.pts {
            previous = Some((pts, word));
        }
    }
    Ok(())
}

/// Messages as Soniox sends them (finals in time order, then a non-final tail), with now and
/// then a fault: a step back, a time past the audio, a negative time, a wrong type, a repeat.
fn ordered_messages() -> impl Strategy<Value = Vec<Value>> {
    let step = (text(), 0u64..300, 0u64..400, any::<bool>(), 0u16..400);
    prop::collection::vec(prop::collection::vec(step, 1..6), 1..40).prop_map(|messages| {
        let mut now = 0u64;
        let mut total = 0u64;
        let mut out = Vec::new();
        for steps in messages {
            let (finals, tail): (Vec<_>, Vec<_>) = steps.into_iter().partition(|s| s.3);
            let mut tokens = Vec::new();
            let mut at = now;
            for (i, (text, gap, duration, is_final, fault)) in
                finals.into_iter().chain(tail).enumerate()
            {
                let start = at + gap;
                let end = start + duration;
                let mut token =
                    json!({ "text": text, "start_ms": start, "end_ms": end, "is_final": is_final });
                match fault {
                    0 => token["start_ms"] = json!(start.saturating_sub(5000)),
                    1 => token["end_ms"] = json!(end + 60_000_000),
                    2 => token["start_ms"] = json!(-1),
                    3 => token["is_final"] = json!("yes"),
                    _ => {}
                }
                if is_final && fault == 4 && i > 0 {
                    tokens.push(tokens.last().cloned().expect("i > 0")); // a final sent twice
                }
                tokens.push(token);
                at = end;
                if is_final {
                    now = end;
                }
            }
            total = total.max(at);
            out.push(json!({ "tokens": tokens, "final_audio_proc_ms": now, "total_audio_proc_ms": total }));
        }
        out
    })
}

/// Numbers of every kind a careless or hostile server might send.
fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        (0u64..30_000).prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[0-9]{1,20}".prop_map(Value::from),
        Just(Value::Null),
        Just(json!("soon")),
        Just(json!(true)),
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("<end>".to_string()),
        Just("<fin>".to_string()),
        Just(String::new()),
        "[ ]?[a-z]{1,6}[,.!?]?",
        "[ ]?[你好世界こんにちは]{1,3}",
        "[ ]?[.,!?¿¡«»]{1,2}",
        "[ ]?[a-z]{1,4} [a-z]{1,4}",
        any::<String>(),
    ]
}

/// A token with plausible or absurd values.
fn token_like() -> impl Strategy<Value = Value> {
    (
        text(),
        number(),
        number(),
        any::<bool>(),
        prop::option::of("[1-3]"),
        prop::option::of(prop_oneof![
            Just("translation"),
            Just("original"),
            Just("none")
        ]),
    )
        .prop_map(|(text, start, end, is_final, speaker, status)| {
            let mut token =
                json!({ "text": text, "start_ms": start, "end_ms": end, "is_final": is_final });
            if let Some(speaker) = speaker {
                token["speaker"] = json!(speaker);
            }
            if let Some(status) = status {
                token["translation_status"] = json!(status);
            }
            token
        })
}

/// Objects with the message's fields (some of them), of right or wrong types.
fn message_like() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![number(), any::<String>().prop_map(Value::from)];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::hash_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    (
        prop::option::of(prop_oneof![
            prop::collection::vec(token_like(), 0..6).prop_map(Value::Array),
            any_json.clone(),
        ]),
        prop::option::of(number()),
        prop::option::of(number()),
        prop::option::of(prop_oneof![
            any::<bool>().prop_map(Value::from),
            any_json.clone()
        ]),
        prop::option::of(number()),
        prop::option::of(any::<String>()),
    )
        .prop_map(|(tokens, done, total, finished, code, error)| {
            let mut message = json!({});
            let fields = [
                ("tokens", tokens),
                ("final_audio_proc_ms", done),
                ("total_audio_proc_ms", total),
                ("finished", finished),
                ("error_code", code),
                ("error_message", error.map(Value::from)),
            ];
            for (key, value) in fields {
                if let Some(value) = value {
                    message[key] = value;
                }
            }
            message
        })
}
