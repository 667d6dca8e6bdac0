//! The wire work the gateway does for every request: parse the client's body, write the
//! upstream's, read the upstream's answer and write the client's; and, for a stream, the
//! work per chunk — decode one upstream SSE event, encode it in the client's format.
//!
//! `cargo bench -p router-providers --bench wire`

use divan::{Bencher, black_box};
use router_providers::chat::ResponseMeta;
use router_providers::{ChatRequest, FinishReason, StreamEvent, anthropic, ollama, openai};
use serde_json::json;

fn main() {
    divan::main();
}

const QUESTION: &str = "I have a Python service that reads orders from a queue and writes them \
to PostgreSQL. Under load it sometimes writes the same order twice. How can I make the writes \
idempotent, and what should the table's unique key be? Show a short example.";

/// About 2,000 tokens of prose.
fn long_text() -> String {
    let paragraph = "Our team runs a payment service behind a load balancer. Each request \
validates a card token, looks up the merchant's limits, writes a ledger entry and publishes an \
event. Under peak traffic the p99 latency climbs and the database shows lock waits. ";
    paragraph.repeat(8_000 / paragraph.len() + 1)
}

fn openai_body(text: &str) -> Vec<u8> {
    json!({
        "model": "auto",
        "messages": [
            { "role": "system", "content": "You are a helpful assistant." },
            { "role": "user", "content": text },
        ],
        "temperature": 0.2,
    })
    .to_string()
    .into_bytes()
}

fn anthropic_body(text: &str) -> Vec<u8> {
    json!({
        "model": "auto",
        "max_tokens": 1024,
        "system": "You are a helpful assistant.",
        "messages": [{ "role": "user", "content": text }],
    })
    .to_string()
    .into_bytes()
}

fn request(text: &str) -> ChatRequest {
    openai::parse_request(&openai_body(text)).map(|c| c.request).unwrap_or_default()
}

fn meta() -> ResponseMeta {
    ResponseMeta {
        id: "chatcmpl-0193a1b2c3d4e5f60718293a4b5c6d7e".into(),
        model: "bench-small".into(),
        created: 1_795_741_950,
    }
}

const OPENAI_ANSWER: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1795741950,"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant","content":"Use an idempotency key: give each order a unique id from the producer, make it the table's primary key, and insert with ON CONFLICT (order_id) DO NOTHING so a redelivered message changes nothing."},"finish_reason":"stop"}],"usage":{"prompt_tokens":62,"completion_tokens":41,"total_tokens":103}}"#;
const ANTHROPIC_ANSWER: &str = r#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-sonnet-4-5","content":[{"type":"text","text":"Use an idempotency key: give each order a unique id from the producer, make it the table's primary key, and insert with ON CONFLICT (order_id) DO NOTHING so a redelivered message changes nothing."}],"stop_reason":"end_turn","stop_sequence":null,"usage":{"input_tokens":62,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":41}}"#;

mod parse {
    use super::*;

    #[divan::bench]
    fn openai_short(bencher: Bencher) {
        let body = openai_body(QUESTION);
        bencher.bench(|| openai::parse_request(black_box(&body)));
    }

    #[divan::bench]
    fn openai_2k_tokens(bencher: Bencher) {
        let body = openai_body(&long_text());
        bencher.bench(|| openai::parse_request(black_box(&body)));
    }

    #[divan::bench]
    fn anthropic_short(bencher: Bencher) {
        let body = anthropic_body(QUESTION);
        bencher.bench(|| anthropic::parse_request(black_box(&body)));
    }
}

/// The body sent upstream, as bytes (what the HTTP client puts on the wire).
mod upstream_body {
    use super::*;

    #[divan::bench]
    fn openai_short(bencher: Bencher) {
        let request = request(QUESTION);
        bencher.bench(|| openai::request_bytes(black_box(&request), "gpt-4o-mini", false));
    }

    #[divan::bench]
    fn openai_2k_tokens(bencher: Bencher) {
        let request = request(&long_text());
        bencher.bench(|| openai::request_bytes(black_box(&request), "gpt-4o-mini", false));
    }

    #[divan::bench]
    fn anthropic_from_openai_short(bencher: Bencher) {
        let request = request(QUESTION);
        bencher.bench(|| {
            anthropic::request_bytes(black_box(&request), "claude-sonnet-4-5", 4096, false)
        });
    }

    #[divan::bench]
    fn ollama_short(bencher: Bencher) {
        let request = request(QUESTION);
        bencher.bench(|| ollama::request_bytes(black_box(&request), "llama3.2", false));
    }

    #[divan::bench]
    fn ollama_2k_tokens(bencher: Bencher) {
        let request = request(&long_text());
        bencher.bench(|| ollama::request_bytes(black_box(&request), "llama3.2", false));
    }
}

/// A complete answer: the upstream's JSON read, the client's written.
mod answer {
    use super::*;

    #[divan::bench]
    fn openai_parse(bencher: Bencher) {
        bencher.bench(|| openai::parse_response(black_box(OPENAI_ANSWER.as_bytes())));
    }

    #[divan::bench]
    fn anthropic_parse(bencher: Bencher) {
        bencher.bench(|| anthropic::parse_response(black_box(ANTHROPIC_ANSWER.as_bytes())));
    }

    #[divan::bench]
    fn openai_encode(bencher: Bencher) {
        let response = openai::parse_response(OPENAI_ANSWER.as_bytes()).ok();
        let meta = meta();
        bencher.bench(|| response.as_ref().map(|r| openai::encode_response(black_box(r), &meta)));
    }

    #[divan::bench]
    fn anthropic_encode(bencher: Bencher) {
        let response = openai::parse_response(OPENAI_ANSWER.as_bytes()).ok();
        let meta = meta();
        bencher
            .bench(|| response.as_ref().map(|r| anthropic::encode_response(black_box(r), &meta)));
    }
}

/// One streamed chunk through the relay's wire work: the upstream's SSE event decoded into
/// neutral events, each encoded for the client. The decoder and encoder keep their state
/// across chunks, as in a real stream.
mod stream_chunk {
    use super::*;

    fn openai_chunk(i: usize) -> Vec<u8> {
        format!(
            "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1795741950,\"model\":\"gpt-4o-mini\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\" word{i}\"}},\"finish_reason\":null}}]}}\n\n"
        )
        .into_bytes()
    }

    pub(super) fn anthropic_chunk(i: usize) -> Vec<u8> {
        format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\" word{i}\"}}}}\n\n"
        )
        .into_bytes()
    }

    const OPENAI_START: &str = "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1795741950,\"model\":\"gpt-4o-mini\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
    pub(super) const ANTHROPIC_START: &str = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":62,\"output_tokens\":1}}}\n\nevent: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n";

    /// Feeds the stream's opening, then one chunk per iteration (cycling through `chunks`),
    /// encoding every event the chunk yields. `prime` says whether the opening's events are
    /// encoded too (an encoder that must see the start before any delta).
    fn relay(
        bencher: Bencher,
        start: &str,
        chunks: Vec<Vec<u8>>,
        prime: bool,
        mut feed: impl FnMut(&[u8], &mut Vec<StreamEvent>),
        mut encode: impl FnMut(&StreamEvent) -> usize,
    ) {
        let mut events: Vec<StreamEvent> = Vec::new();
        feed(start.as_bytes(), &mut events);
        if prime {
            for event in &events {
                encode(event);
            }
        }
        let mut i = 0;
        bencher.bench_local(|| {
            events.clear();
            feed(black_box(&chunks[i % chunks.len()]), &mut events);
            i += 1;
            events.iter().map(&mut encode).sum::<usize>()
        });
    }

    /// OpenAI upstream, OpenAI client: the common pass-through.
    #[divan::bench]
    fn openai_to_openai(bencher: Bencher) {
        let mut decoder = openai::StreamDecoder::new();
        let mut encoder = openai::StreamEncoder::new(meta(), false);
        relay(
            bencher,
            OPENAI_START,
            (0..256).map(openai_chunk).collect(),
            false,
            |bytes, events| drop(decoder.feed(bytes, events)),
            |event| encoder.encode(event).len(),
        );
    }

    /// Anthropic upstream, OpenAI client: translation on every chunk.
    #[divan::bench]
    fn anthropic_to_openai(bencher: Bencher) {
        let mut decoder = anthropic::StreamDecoder::new();
        let mut encoder = openai::StreamEncoder::new(meta(), false);
        relay(
            bencher,
            ANTHROPIC_START,
            (0..256).map(anthropic_chunk).collect(),
            false,
            |bytes, events| drop(decoder.feed(bytes, events)),
            |event| encoder.encode(event).len(),
        );
    }

    /// OpenAI upstream, Anthropic client.
    #[divan::bench]
    fn openai_to_anthropic(bencher: Bencher) {
        let mut decoder = openai::StreamDecoder::new();
        let mut encoder = anthropic::StreamEncoder::new(meta(), 62);
        relay(
            bencher,
            OPENAI_START,
            (0..256).map(openai_chunk).collect(),
            true,
            |bytes, events| drop(decoder.feed(bytes, events)),
            |event| encoder.encode(event).len(),
        );
    }
}

/// A whole upstream stream decoded, opening and ending events included: a fresh decoder per
/// iteration, 30 text deltas between the ends.
mod stream_whole {
    use super::*;

    fn anthropic_stream() -> Vec<u8> {
        let mut stream = String::from(stream_chunk::ANTHROPIC_START);
        stream.push_str("event: ping\ndata: {\"type\": \"ping\"}\n\n");
        for i in 0..30 {
            stream.push_str(&String::from_utf8(stream_chunk::anthropic_chunk(i)).unwrap());
        }
        stream.push_str(
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        );
        stream.push_str("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":31}}\n\n");
        stream.push_str("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        stream.into_bytes()
    }

    /// Decodes `stream` in one piece, `decode` starting a fresh decoder each iteration.
    fn decode_whole(
        bencher: Bencher,
        stream: &[u8],
        decode: impl Fn(&[u8], &mut Vec<StreamEvent>),
    ) {
        bencher.bench_local(|| {
            let mut events = Vec::new();
            decode(black_box(stream), &mut events);
            events.len()
        });
    }

    #[divan::bench]
    fn anthropic_upstream(bencher: Bencher) {
        decode_whole(bencher, &anthropic_stream(), |bytes, events| {
            drop(anthropic::StreamDecoder::new().feed(bytes, events))
        });
    }

    /// Ollama's NDJSON, as a local model behind it answers: 30 text lines and the last.
    fn ollama_stream() -> Vec<u8> {
        let mut stream = String::new();
        for i in 0..30 {
            stream.push_str(&format!("{{\"model\":\"llama3.2\",\"created_at\":\"2026-11-29T08:52:19.385406455Z\",\"message\":{{\"role\":\"assistant\",\"content\":\" word{i}\"}},\"done\":false}}\n"));
        }
        stream.push_str("{\"model\":\"llama3.2\",\"created_at\":\"2026-11-29T08:52:21.499127Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"total_duration\":4883583458,\"load_duration\":1334875,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,\"eval_count\":31,\"eval_duration\":4535599000}\n");
        stream.into_bytes()
    }

    #[divan::bench]
    fn ollama_upstream(bencher: Bencher) {
        decode_whole(bencher, &ollama_stream(), |bytes, events| {
            drop(ollama::StreamDecoder::new().feed(bytes, events))
        });
    }
}

/// The frames an Anthropic client's stream gets once each: `message_start` and `ping` with
/// the first text, the text block opened and closed, `message_delta` and `message_stop` at
/// the end — around a single delta, so the once-a-stream events dominate.
mod stream_ends {
    use super::*;

    #[divan::bench]
    fn anthropic_client(bencher: Bencher) {
        let text = StreamEvent::TextDelta { text: "Hello".into() };
        let finish = StreamEvent::Finish { reason: FinishReason::Stop, stop_sequence: None };
        bencher.bench_local(|| {
            let mut encoder = anthropic::StreamEncoder::new(meta(), 62);
            let mut n = encoder.encode(black_box(&text)).len();
            n += encoder.encode(&finish).len();
            n + encoder.finish().len()
        });
    }
}
