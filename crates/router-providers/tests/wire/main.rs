//! The wire formats without a network: parsing and validating client requests, writing
//! responses, streams and errors, building upstream requests and reading upstream answers,
//! and translation across formats with stable tool-call ids.

mod anthropic;
mod ollama;
mod openai;
mod support;
mod translation;
