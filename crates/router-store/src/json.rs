//! JSON text for the store's TEXT columns, written with less work than `serde_json::to_string`.
//!
//! A decision's features and ranking: the text is what `serde_json::to_string` makes of [`Features`] and of the ranking, byte
//! for byte (the tests hold the two equal), but the keys and punctuation are written as they
//! are. serde_json sends every key of a derived struct through its escaping loop with three
//! calls into the buffer; for the two dozen keys of a request's features and ranking that
//! was about a quarter of what the writer's thread spent on a request. Values (numbers,
//! enums, model names) still go through serde_json, so they are spelt exactly as the derive
//! spells them. Anything else (an outcome's attempts) goes through serde_json whole, into a
//! buffer sized for it: `to_string` starts small and grows by copying, three or four times
//! for an ordinary text.

use router_core::{Features, RankedCandidate};
use serde::Serialize;

use crate::error::StoreError;

/// About what a request's features take (330 bytes for an English prompt) and each candidate
/// in its ranking (170): room enough that the text is written without growing.
const FEATURES_BYTES: usize = 448;
const CANDIDATE_BYTES: usize = 224;

pub(crate) fn features(f: &Features) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(FEATURES_BYTES);
    let language = &f.language;
    field(&mut out, b"{\"language\":{\"primary\":", &language.primary)?;
    field(&mut out, b",\"secondary\":", &language.secondary)?;
    field(&mut out, b",\"confidence\":", &language.confidence)?;
    let domain = &f.domain;
    field(&mut out, b"},\"domain\":{\"domain\":", &domain.domain)?;
    field(&mut out, b",\"confidence\":", &domain.confidence)?;
    field(&mut out, b",\"runner_up\":", &domain.runner_up)?;
    field(&mut out, b"},\"complexity\":{\"score\":", &f.complexity.score)?;
    field(&mut out, b",\"band\":", &f.complexity.band)?;
    field(&mut out, b"},\"prompt_tokens\":", &f.prompt_tokens)?;
    field(&mut out, b",\"expected_output_tokens\":", &f.expected_output_tokens)?;
    let needs = &f.needs;
    field(&mut out, b",\"needs\":{\"vision\":", &needs.vision)?;
    field(&mut out, b",\"tools\":", &needs.tools)?;
    field(&mut out, b",\"json\":", &needs.json)?;
    field(&mut out, b",\"context_tokens\":", &needs.context_tokens)?;
    out.extend_from_slice(b"}}");
    text(out)
}

pub(crate) fn ranking(ranking: &[RankedCandidate]) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(2 + CANDIDATE_BYTES * ranking.len());
    out.push(b'[');
    for (i, candidate) in ranking.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let estimate = &candidate.estimate;
        field(&mut out, b"{\"model\":", &candidate.model)?;
        field(&mut out, b",\"estimate\":{\"quality\":", &estimate.quality)?;
        field(&mut out, b",\"cost_usd\":", &estimate.cost_usd)?;
        field(&mut out, b",\"latency_ms\":", &estimate.latency_ms)?;
        field(&mut out, b",\"evidence\":", &estimate.evidence)?;
        field(&mut out, b"},\"utility\":", &candidate.utility)?;
        out.push(b'}');
    }
    out.push(b']');
    text(out)
}

/// `value` as JSON text, written into a buffer of `capacity` bytes.
pub(crate) fn text_of<T: Serialize + ?Sized>(
    value: &T,
    capacity: usize,
) -> Result<String, StoreError> {
    let mut out = Vec::with_capacity(capacity);
    serde_json::to_writer(&mut out, value)?;
    text(out)
}

/// Writes `key` (with the punctuation before it) as it is, then `value` as serde_json does.
fn field(out: &mut Vec<u8>, key: &[u8], value: &impl Serialize) -> Result<(), StoreError> {
    out.extend_from_slice(key);
    Ok(serde_json::to_writer(out, value)?)
}

fn text(json: Vec<u8>) -> Result<String, StoreError> {
    // serde_json writes nothing but UTF-8, and the keys here are ASCII, so this only moves
    // the buffer.
    String::from_utf8(json)
        .map_err(|error| StoreError::InvalidRecord(format!("JSON that is not UTF-8: {error}")))
}

#[cfg(test)]
mod tests {
    use router_core::{
        Band, Complexity, Domain, DomainGuess, Estimate, Language, LanguageGuess, Needs,
    };

    use super::*;
    use crate::record::Attempt;

    #[test]
    fn text_of_is_what_serde_json_writes_whatever_the_room() {
        let attempts = vec![
            Attempt {
                model: "m\u{e9}\"1".into(),
                deployment: "m#1".into(),
                error_kind: Some("timeout".into()),
                duration_ms: 5,
            };
            3
        ];
        let expected = serde_json::to_string(&attempts).unwrap();
        for capacity in [0, 1, expected.len(), 4096] {
            assert_eq!(text_of(&attempts, capacity).unwrap(), expected);
        }
    }

    fn sample(secondary: Option<Language>, runner_up: Option<(Domain, f32)>) -> Features {
        Features {
            language: LanguageGuess { primary: Language::Zh, secondary, confidence: 0.998_157_9 },
            domain: DomainGuess { domain: Domain::Code, confidence: 0.975_553_75, runner_up },
            complexity: Complexity { score: 0.228_955_55, band: Band::Medium },
            prompt_tokens: 18,
            expected_output_tokens: 380,
            needs: Needs { vision: true, tools: false, json: true, context_tokens: 1_042 },
        }
    }

    #[test]
    fn features_are_written_as_serde_json_writes_them() {
        for written in [
            sample(None, None),
            sample(Some(Language::En), Some((Domain::Math, 0.009_230_443))),
            sample(Some(Language::Other), Some((Domain::Code, f32::NAN))),
        ] {
            assert_eq!(features(&written).unwrap(), serde_json::to_string(&written).unwrap());
        }
    }

    #[test]
    fn rankings_are_written_as_serde_json_writes_them() {
        let candidate = |model: &str, utility| RankedCandidate {
            model: model.into(),
            estimate: Estimate {
                quality: 0.588_000_000_000_000_1,
                cost_usd: 0.000_230_7,
                latency_ms: 2_000.0,
                evidence: 3.5,
            },
            utility,
        };
        for written in [
            vec![],
            vec![candidate("bench-small", 0.905)],
            vec![candidate("a \"quoted\" \u{e9} model", -0.414), candidate("b", f64::INFINITY)],
        ] {
            assert_eq!(ranking(&written).unwrap(), serde_json::to_string(&written).unwrap());
        }
    }
}
