//! A decision's features and ranking as the JSON text the `requests` table keeps.
//!
//! The text is what `serde_json::to_string` makes of [`Features`] and of the ranking, byte
//! for byte (the tests hold the two equal), but the keys and punctuation are written as they
//! are. serde_json sends every key of a derived struct through its escaping loop with three
//! calls into the buffer; for the two dozen keys of a request's features and ranking that
//! was about a quarter of what the writer's thread spent on a request. Values (numbers,
//! enums, model names) still go through serde_json, so they are spelt exactly as the derive
//! spells them.

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
    out.extend_from_slice(b"{\"language\":{\"primary\":");
    value(&mut out, &language.primary)?;
    out.extend_from_slice(b",\"secondary\":");
    value(&mut out, &language.secondary)?;
    out.extend_from_slice(b",\"confidence\":");
    value(&mut out, &language.confidence)?;
    let domain = &f.domain;
    out.extend_from_slice(b"},\"domain\":{\"domain\":");
    value(&mut out, &domain.domain)?;
    out.extend_from_slice(b",\"confidence\":");
    value(&mut out, &domain.confidence)?;
    out.extend_from_slice(b",\"runner_up\":");
    value(&mut out, &domain.runner_up)?;
    out.extend_from_slice(b"},\"complexity\":{\"score\":");
    value(&mut out, &f.complexity.score)?;
    out.extend_from_slice(b",\"band\":");
    value(&mut out, &f.complexity.band)?;
    out.extend_from_slice(b"},\"prompt_tokens\":");
    value(&mut out, &f.prompt_tokens)?;
    out.extend_from_slice(b",\"expected_output_tokens\":");
    value(&mut out, &f.expected_output_tokens)?;
    let needs = &f.needs;
    out.extend_from_slice(b",\"needs\":{\"vision\":");
    value(&mut out, &needs.vision)?;
    out.extend_from_slice(b",\"tools\":");
    value(&mut out, &needs.tools)?;
    out.extend_from_slice(b",\"json\":");
    value(&mut out, &needs.json)?;
    out.extend_from_slice(b",\"context_tokens\":");
    value(&mut out, &needs.context_tokens)?;
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
        out.extend_from_slice(b"{\"model\":");
        value(&mut out, &candidate.model)?;
        out.extend_from_slice(b",\"estimate\":{\"quality\":");
        value(&mut out, &estimate.quality)?;
        out.extend_from_slice(b",\"cost_usd\":");
        value(&mut out, &estimate.cost_usd)?;
        out.extend_from_slice(b",\"latency_ms\":");
        value(&mut out, &estimate.latency_ms)?;
        out.extend_from_slice(b",\"evidence\":");
        value(&mut out, &estimate.evidence)?;
        out.extend_from_slice(b"},\"utility\":");
        value(&mut out, &candidate.utility)?;
        out.push(b'}');
    }
    out.push(b']');
    text(out)
}

fn value(out: &mut Vec<u8>, value: &impl Serialize) -> Result<(), StoreError> {
    Ok(serde_json::to_writer(out, value)?)
}

fn text(json: Vec<u8>) -> Result<String, StoreError> {
    // Keys are ASCII and serde_json writes nothing but UTF-8, so this only moves the buffer.
    String::from_utf8(json)
        .map_err(|error| StoreError::InvalidRecord(format!("JSON that is not UTF-8: {error}")))
}

#[cfg(test)]
mod tests {
    use router_core::{
        Band, Complexity, Domain, DomainGuess, Estimate, Language, LanguageGuess, Needs,
    };

    use super::*;

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
