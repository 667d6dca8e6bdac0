#!/usr/bin/env python3
"""SDK conformance: the official `openai` or `anthropic` Python package, unmodified, talks to
a running llm-router gateway the way any application would, and every answer, stream and
error must come back as that SDK's own types.

Run by `cargo test -p router-gateway --test sdk`, which starts simulated upstreams and a
gateway and calls this script once per client SDK and upstream format. By hand:

    python3 conformance.py --client anthropic --base-url http://127.0.0.1:3100 \
        --key KEY --model an --rate-limited an-429 --failing an-500 \
        --overloaded an-529 --broken-stream an-cut

`--model` must be a gateway model served by a simulated upstream, whose answers start with
`[<model>]`, quote the last user message, call the first offered tool when asked to "use
the tool", and quote a tool result. The optional models fail in the named way on every
request, and the gateway must not retry them (`[dispatch] max_attempts = 1`).

Prints one line per check and exits non-zero if any failed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from typing import Callable

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
TOOL_RESULT = "18 degrees and sunny"


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


def expect_error(kind: type, call: Callable[[], object], what: str) -> Exception:
    """Runs `call`, which must raise the SDK exception `kind` (not merely a parent of it)."""
    try:
        result = call()
    except kind as error:
        return error
    except Exception as error:  # noqa: BLE001 - reporting what was raised instead
        raise Failed(f"{what}: expected {kind.__name__}, got {type(error).__name__}: {error}")
    raise Failed(f"{what}: expected {kind.__name__}, got a result: {result!r}")


def honour_retry_after(error) -> None:
    """Waits as long as a rate-limited answer asked, as a well-behaved client does: until then
    the gateway keeps the upstream's deployment resting and would answer for it itself."""
    if error.status_code == 429:
        wait = error.response.headers.get("retry-after")
        check(wait is not None and wait.isdigit(), f"429 without a usable Retry-After: {wait!r}")
        time.sleep(int(wait) + 0.2)


# ---------------------------------------------------------------------------------------
# The anthropic SDK
# ---------------------------------------------------------------------------------------


class AnthropicChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        import anthropic

        self.sdk = anthropic
        self.args = args
        self.model = args.model
        self.client = anthropic.Anthropic(
            base_url=args.base_url, api_key=args.key or "unused", max_retries=0, timeout=30
        )
        self.weather = {
            "name": "get_weather",
            "description": "The current weather in a city.",
            "input_schema": WEATHER_SCHEMA,
        }

    def ask(self, text: str, **extra):
        return self.client.messages.create(
            model=self.model,
            max_tokens=300,
            messages=[{"role": "user", "content": text}],
            **extra,
        )

    def text_of(self, message) -> str:
        return "".join(block.text for block in message.content if block.type == "text")

    def checks(self) -> list[Callable[[], None]]:
        found = [
            self.non_streaming,
            self.raw_response_headers,
            self.streaming_helper,
            self.streaming_raw_events,
            self.system_and_multi_turn,
            self.tool_use_round_trip,
            self.tool_use_round_trip_streaming,
            self.forced_tool_choice,
            self.max_tokens_stop_reason,
            self.count_tokens,
            self.unknown_model_is_not_found,
            self.bad_body_is_bad_request,
        ]
        if self.args.key:
            found += [self.wrong_key_is_authentication_error, self.x_api_key_is_accepted]
        if self.args.rate_limited:
            found.append(self.upstream_rate_limit)
        if self.args.failing:
            found.append(self.upstream_failure)
        if self.args.overloaded:
            found.append(self.upstream_overload)
        if self.args.broken_stream:
            found.append(self.broken_stream)
        return found

    def non_streaming(self) -> None:
        message = self.ask("What is the capital of France?")
        check(isinstance(message, self.sdk.types.Message), f"not a Message: {type(message)}")
        check(message.type == "message" and message.role == "assistant", repr(message))
        check(message.id.startswith("msg_"), f"id {message.id}")
        check(message.model == self.model, f"model {message.model}")
        check(len(message.content) == 1 and message.content[0].type == "text", repr(message.content))
        text = message.content[0].text
        check(text.startswith(f"[{self.model}]"), text)
        check("capital of France" in text, text)
        check(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason}")
        check(message.stop_sequence is None, repr(message.stop_sequence))
        check(message.usage.input_tokens > 0 and message.usage.output_tokens > 0, repr(message.usage))
        check((message._request_id or "").startswith("req_"), f"request id {message._request_id}")

    def raw_response_headers(self) -> None:
        raw = self.client.messages.with_raw_response.create(
            model=self.model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        check(raw.headers.get("x-router-model") == self.model, repr(dict(raw.headers)))
        check(bool(raw.headers.get("x-router-decision-id")), "no decision id")
        check(raw.parse().content[0].text.startswith(f"[{self.model}]"), "parse")

    def streaming_helper(self) -> None:
        prompt = "Explain how tides work"
        whole = self.text_of(self.ask(prompt))
        pieces = []
        with self.client.messages.stream(
            model=self.model, max_tokens=300, messages=[{"role": "user", "content": prompt}]
        ) as stream:
            for piece in stream.text_stream:
                pieces.append(piece)
            final = stream.get_final_message()
        check(len(pieces) > 1, f"the text came in {len(pieces)} pieces")
        check("".join(pieces) == whole, f"streamed {''.join(pieces)!r} != {whole!r}")
        check(self.text_of(final) == whole, "final message text")
        check(final.stop_reason == "end_turn", f"stop_reason {final.stop_reason}")
        check(final.usage.output_tokens > 0, repr(final.usage))
        check(final.model == self.model, final.model)

    def streaming_raw_events(self) -> None:
        stream = self.client.messages.create(
            model=self.model,
            max_tokens=300,
            messages=[{"role": "user", "content": "Describe a sunset"}],
            stream=True,
        )
        kinds = [event.type for event in stream]
        check(kinds[0] == "message_start", repr(kinds))
        check(kinds[1] == "content_block_start", repr(kinds))
        check(kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"], repr(kinds))
        middle = kinds[2:-3]
        check(middle and all(k == "content_block_delta" for k in middle), repr(kinds))

    def system_and_multi_turn(self) -> None:
        message = self.client.messages.create(
            model=self.model,
            max_tokens=200,
            system="You are a terse assistant.",
            messages=[
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": [{"type": "text", "text": "Name a prime above ten"}]},
            ],
            stop_sequences=["\n\nHuman:"],
            metadata={"user_id": "conformance"},
            # Sampling fields the API takes though this SDK release has no parameter for them.
            extra_body={"temperature": 0.2, "top_p": 0.9},
        )
        text = self.text_of(message)
        check("Name a prime above ten" in text, f"the last turn was not answered: {text}")

    def _tool_call(self, message):
        check(message.stop_reason == "tool_use", f"stop_reason {message.stop_reason}")
        calls = [b for b in message.content if b.type == "tool_use"]
        check(len(calls) == 1, repr(message.content))
        call = calls[0]
        check(call.name == "get_weather" and call.id, repr(call))
        check(isinstance(call.input, dict) and isinstance(call.input.get("city"), str), repr(call.input))
        return call

    def _follow_up(self, message, call) -> list:
        return [
            {"role": "user", "content": "Use the tool to get the weather in Paris"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in message.content]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": TOOL_RESULT}],
            },
        ]

    def tool_use_round_trip(self) -> None:
        message = self.ask("Use the tool to get the weather in Paris", tools=[self.weather])
        call = self._tool_call(message)
        answer = self.client.messages.create(
            model=self.model, max_tokens=300, tools=[self.weather], messages=self._follow_up(message, call)
        )
        check(answer.stop_reason == "end_turn", f"stop_reason {answer.stop_reason}")
        check(TOOL_RESULT in self.text_of(answer), self.text_of(answer))

    def tool_use_round_trip_streaming(self) -> None:
        with self.client.messages.stream(
            model=self.model,
            max_tokens=300,
            tools=[self.weather],
            messages=[{"role": "user", "content": "Use the tool to get the weather in Paris"}],
        ) as stream:
            deltas = [e for e in stream if e.type == "input_json"]
            message = stream.get_final_message()
        check(deltas, "no input_json events")
        call = self._tool_call(message)
        with self.client.messages.stream(
            model=self.model, max_tokens=300, tools=[self.weather], messages=self._follow_up(message, call)
        ) as stream:
            text = stream.get_final_text()
        check(TOOL_RESULT in text, text)

    def forced_tool_choice(self) -> None:
        choose = lambda: self.ask(  # noqa: E731
            "What is the weather like?",
            tools=[self.weather],
            tool_choice={"type": "tool", "name": "get_weather"},
        )
        if self.args.upstream == "ollama":
            # Ollama cannot be made to call a tool: refused, not silently ignored.
            error = expect_error(self.sdk.BadRequestError, choose, "forced tool on Ollama")
            check(error.status_code == 400 and "tool" in str(error), str(error))
        else:
            self._tool_call(choose())

    def max_tokens_stop_reason(self) -> None:
        message = self.client.messages.create(
            model=self.model, max_tokens=3, messages=[{"role": "user", "content": "Tell me all about Rome"}]
        )
        check(message.stop_reason == "max_tokens", f"stop_reason {message.stop_reason}")

    def count_tokens(self) -> None:
        short = self.client.messages.count_tokens(
            model=self.model, messages=[{"role": "user", "content": "Hello"}]
        )
        longer = self.client.messages.count_tokens(
            model=self.model,
            system="Be brief.",
            tools=[self.weather],
            messages=[{"role": "user", "content": "Hello " * 40}],
        )
        check(0 < short.input_tokens < longer.input_tokens, f"{short} vs {longer}")

    def unknown_model_is_not_found(self) -> None:
        error = expect_error(
            self.sdk.NotFoundError,
            lambda: self.client.messages.create(
                model="claude-nonexistent-9", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
            ),
            "unknown model",
        )
        check(error.body["error"]["type"] == "not_found_error", repr(error.body))

    def bad_body_is_bad_request(self) -> None:
        error = expect_error(
            self.sdk.BadRequestError,
            lambda: self.ask("hi", extra_body={"temperature": 1.5}),
            "temperature out of range",
        )
        check(error.body["type"] == "error", repr(error.body))
        check(error.body["error"]["type"] == "invalid_request_error", repr(error.body))
        check("temperature" in error.body["error"]["message"], repr(error.body))

    def wrong_key_is_authentication_error(self) -> None:
        for credentials in ({"api_key": "wrong-key"}, {"auth_token": "wrong-key"}):
            client = self.sdk.Anthropic(base_url=self.args.base_url, max_retries=0, **credentials)
            error = expect_error(
                self.sdk.AuthenticationError,
                lambda: client.messages.create(
                    model=self.model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
                ),
                f"wrong key as {next(iter(credentials))}",
            )
            check(error.body["error"]["type"] == "authentication_error", repr(error.body))

    def x_api_key_is_accepted(self) -> None:
        # The key in `x-api-key` alone, as Anthropic's API takes it.
        client = self.sdk.Anthropic(
            base_url=self.args.base_url,
            api_key=self.args.key,
            max_retries=0,
            default_headers={"Authorization": self.sdk.omit, "x-api-key": self.args.key},
        )
        raw = client.messages.with_raw_response.create(
            model=self.model, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
        sent = raw.http_request.headers
        check("authorization" not in sent and sent.get("x-api-key") == self.args.key, repr(dict(sent)))
        check(raw.parse().type == "message", "answer")

    def _failing(self, model: str, kind: type, status: int, error_type: str) -> None:
        def call():
            return self.client.messages.create(
                model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            )

        def stream():
            with self.client.messages.stream(
                model=model, max_tokens=20, messages=[{"role": "user", "content": "hi"}]
            ) as s:
                return s.get_final_message()

        for what, run in (("create", call), ("stream", stream)):
            error = expect_error(kind, run, f"{model} {what}")
            check(error.status_code == status, f"{model} {what}: status {error.status_code}")
            check(error.body["error"]["type"] == error_type, f"{model} {what}: {error.body}")
            honour_retry_after(error)

    def upstream_rate_limit(self) -> None:
        self._failing(self.args.rate_limited, self.sdk.RateLimitError, 429, "rate_limit_error")

    def upstream_failure(self) -> None:
        self._failing(self.args.failing, self.sdk.InternalServerError, 502, "api_error")

    def upstream_overload(self) -> None:
        self._failing(self.args.overloaded, self.sdk.OverloadedError, 529, "overloaded_error")

    def broken_stream(self) -> None:
        received = []

        def run():
            with self.client.messages.stream(
                model=self.args.broken_stream,
                max_tokens=500,
                messages=[{"role": "user", "content": "Write a long answer"}],
            ) as stream:
                for piece in stream.text_stream:
                    received.append(piece)

        error = expect_error(self.sdk.APIStatusError, run, "broken upstream stream")
        check(received, "no text arrived before the break")
        check(error.body["type"] == "error" and error.body["error"]["message"], repr(error.body))


# ---------------------------------------------------------------------------------------
# The openai SDK
# ---------------------------------------------------------------------------------------


class OpenAiChecks:
    def __init__(self, args: argparse.Namespace) -> None:
        import openai

        self.sdk = openai
        self.args = args
        self.model = args.model
        self.client = openai.OpenAI(
            base_url=args.base_url.rstrip("/") + "/v1",
            api_key=args.key or "unused",
            max_retries=0,
            timeout=30,
        )
        self.weather = {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The current weather in a city.",
                "parameters": WEATHER_SCHEMA,
            },
        }

    def ask(self, text: str, **extra):
        return self.client.chat.completions.create(
            model=self.model, messages=[{"role": "user", "content": text}], **extra
        )

    def checks(self) -> list[Callable[[], None]]:
        found = [
            self.non_streaming,
            self.raw_response_headers,
            self.streaming_chunks,
            self.streaming_helper,
            self.system_and_multi_turn,
            self.tool_call_round_trip,
            self.tool_call_round_trip_streaming,
            self.forced_tool_choice,
            self.max_tokens_finish_reason,
            self.models_list,
            self.unknown_model_is_not_found,
            self.bad_body_is_bad_request,
        ]
        if self.args.key:
            found.append(self.wrong_key_is_authentication_error)
        if self.args.rate_limited:
            found.append(self.upstream_rate_limit)
        if self.args.failing:
            found.append(self.upstream_failure)
        if self.args.overloaded:
            found.append(self.upstream_overload)
        if self.args.broken_stream:
            found.append(self.broken_stream)
        return found

    def non_streaming(self) -> None:
        completion = self.ask("What is the capital of France?")
        check(isinstance(completion, self.sdk.types.chat.ChatCompletion), type(completion).__name__)
        check(completion.object == "chat.completion", completion.object)
        check(completion.model == self.model, completion.model)
        choice = completion.choices[0]
        check(choice.message.role == "assistant", choice.message.role)
        text = choice.message.content or ""
        check(text.startswith(f"[{self.model}]") and "capital of France" in text, text)
        check(choice.finish_reason == "stop", choice.finish_reason)
        usage = completion.usage
        check(usage.prompt_tokens > 0 and usage.completion_tokens > 0, repr(usage))
        check(usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, repr(usage))

    def raw_response_headers(self) -> None:
        raw = self.client.chat.completions.with_raw_response.create(
            model=self.model, messages=[{"role": "user", "content": "hi"}]
        )
        check(raw.headers.get("x-router-model") == self.model, repr(dict(raw.headers)))
        check(bool(raw.headers.get("x-router-decision-id")), "no decision id")

    def streaming_chunks(self) -> None:
        prompt = "Explain how tides work"
        whole = self.ask(prompt).choices[0].message.content
        stream = self.ask(prompt, stream=True, stream_options={"include_usage": True})
        pieces, finish, usage = [], None, None
        for chunk in stream:
            check(chunk.object == "chat.completion.chunk", chunk.object)
            if chunk.usage is not None:
                usage = chunk.usage
            for choice in chunk.choices:
                if choice.delta.content:
                    pieces.append(choice.delta.content)
                finish = choice.finish_reason or finish
        check(len(pieces) > 1, f"the text came in {len(pieces)} pieces")
        check("".join(pieces) == whole, f"streamed {''.join(pieces)!r} != {whole!r}")
        check(finish == "stop", f"finish_reason {finish}")
        check(usage is not None and usage.completion_tokens > 0, repr(usage))

    def streaming_helper(self) -> None:
        with self.client.chat.completions.stream(
            model=self.model, messages=[{"role": "user", "content": "Describe a sunset"}]
        ) as stream:
            deltas = [e.delta for e in stream if e.type == "content.delta"]
            final = stream.get_final_completion()
        text = final.choices[0].message.content
        check(deltas and "".join(deltas) == text, f"{deltas!r} vs {text!r}")
        check(final.choices[0].finish_reason == "stop", final.choices[0].finish_reason)

    def system_and_multi_turn(self) -> None:
        completion = self.client.chat.completions.create(
            model=self.model,
            messages=[
                {"role": "system", "content": "You are a terse assistant."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi! How can I help?"},
                {"role": "user", "content": [{"type": "text", "text": "Name a prime above ten"}]},
            ],
            temperature=0.2,
            top_p=0.9,
            max_tokens=200,
            stop=["\n\nUser:"],
            user="conformance",
        )
        text = completion.choices[0].message.content
        check("Name a prime above ten" in text, f"the last turn was not answered: {text}")

    def _tool_call(self, message, finish_reason):
        check(finish_reason == "tool_calls", f"finish_reason {finish_reason}")
        calls = message.tool_calls or []
        check(len(calls) == 1, repr(message))
        call = calls[0]
        check(call.type == "function" and call.id and call.function.name == "get_weather", repr(call))
        arguments = json.loads(call.function.arguments)
        check(isinstance(arguments.get("city"), str), call.function.arguments)
        return call

    def _follow_up(self, call) -> list:
        return [
            {"role": "user", "content": "Use the tool to get the weather in Paris"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.function.name, "arguments": call.function.arguments},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": call.id, "content": TOOL_RESULT},
        ]

    def tool_call_round_trip(self) -> None:
        completion = self.ask("Use the tool to get the weather in Paris", tools=[self.weather])
        choice = completion.choices[0]
        call = self._tool_call(choice.message, choice.finish_reason)
        answer = self.client.chat.completions.create(
            model=self.model, tools=[self.weather], messages=self._follow_up(call)
        )
        check(answer.choices[0].finish_reason == "stop", answer.choices[0].finish_reason)
        check(TOOL_RESULT in answer.choices[0].message.content, answer.choices[0].message.content)

    def tool_call_round_trip_streaming(self) -> None:
        with self.client.chat.completions.stream(
            model=self.model,
            tools=[self.weather],
            messages=[{"role": "user", "content": "Use the tool to get the weather in Paris"}],
        ) as stream:
            kinds = {e.type for e in stream}
            final = stream.get_final_completion()
        check("tool_calls.function.arguments.done" in kinds, repr(kinds))
        choice = final.choices[0]
        call = self._tool_call(choice.message, choice.finish_reason)
        stream = self.client.chat.completions.create(
            model=self.model, tools=[self.weather], messages=self._follow_up(call), stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        check(TOOL_RESULT in text, text)

    def forced_tool_choice(self) -> None:
        choose = lambda: self.ask(  # noqa: E731
            "What is the weather like?",
            tools=[self.weather],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
        )
        if self.args.upstream == "ollama":
            error = expect_error(self.sdk.BadRequestError, choose, "forced tool on Ollama")
            check(error.status_code == 400 and "tool" in str(error), str(error))
        else:
            choice = choose().choices[0]
            # A forced call ends with `stop` in OpenAI's API and `tool_use` elsewhere; either
            # way the call is there.
            self._tool_call(choice.message, "tool_calls" if choice.message.tool_calls else choice.finish_reason)

    def max_tokens_finish_reason(self) -> None:
        completion = self.ask("Tell me all about Rome", max_tokens=3)
        check(completion.choices[0].finish_reason == "length", completion.choices[0].finish_reason)

    def models_list(self) -> None:
        ids = {m.id for m in self.client.models.list()}
        check(self.model in ids and "auto" in ids, repr(ids))

    def unknown_model_is_not_found(self) -> None:
        error = expect_error(
            self.sdk.NotFoundError,
            lambda: self.client.chat.completions.create(
                model="gpt-nonexistent-9", messages=[{"role": "user", "content": "hi"}]
            ),
            "unknown model",
        )
        check(error.code == "model_not_found", repr(error.body))

    def bad_body_is_bad_request(self) -> None:
        error = expect_error(self.sdk.BadRequestError, lambda: self.ask("hi", temperature=5), "temperature")
        check(error.param == "temperature", repr(error.body))

    def wrong_key_is_authentication_error(self) -> None:
        client = self.sdk.OpenAI(base_url=self.client.base_url, api_key="wrong-key", max_retries=0)
        expect_error(
            self.sdk.AuthenticationError,
            lambda: client.chat.completions.create(
                model=self.model, messages=[{"role": "user", "content": "hi"}]
            ),
            "wrong key",
        )

    def _failing(self, model: str, kind: type, status: int) -> None:
        def call():
            return self.client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}]
            )

        def stream():
            return list(
                self.client.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": "hi"}], stream=True
                )
            )

        for what, run in (("create", call), ("stream", stream)):
            error = expect_error(kind, run, f"{model} {what}")
            check(error.status_code == status, f"{model} {what}: status {error.status_code}")
            honour_retry_after(error)

    def upstream_rate_limit(self) -> None:
        self._failing(self.args.rate_limited, self.sdk.RateLimitError, 429)

    def upstream_failure(self) -> None:
        self._failing(self.args.failing, self.sdk.InternalServerError, 502)

    def upstream_overload(self) -> None:
        self._failing(self.args.overloaded, self.sdk.InternalServerError, 503)

    def broken_stream(self) -> None:
        received = []

        def run():
            stream = self.client.chat.completions.create(
                model=self.args.broken_stream,
                messages=[{"role": "user", "content": "Write a long answer"}],
                stream=True,
            )
            for chunk in stream:
                for choice in chunk.choices:
                    if choice.delta.content:
                        received.append(choice.delta.content)

        error = expect_error(self.sdk.APIError, run, "broken upstream stream")
        check(received, "no text arrived before the break")
        check(bool(error.message), repr(error))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--client", choices=["openai", "anthropic"], required=True)
    parser.add_argument("--base-url", required=True, help="the gateway, without /v1")
    parser.add_argument("--model", required=True, help="a healthy gateway model")
    parser.add_argument(
        "--upstream",
        choices=["openai", "anthropic", "ollama"],
        required=True,
        help="the wire format of the model's upstream",
    )
    parser.add_argument("--key", help="the gateway's client key, when it requires one")
    parser.add_argument("--rate-limited", help="a model whose upstream answers 429")
    parser.add_argument("--failing", help="a model whose upstream answers 500")
    parser.add_argument("--overloaded", help="a model whose upstream is overloaded")
    parser.add_argument("--broken-stream", help="a model whose streams break part-way")
    args = parser.parse_args()

    suite = AnthropicChecks(args) if args.client == "anthropic" else OpenAiChecks(args)
    failures = 0
    checks = suite.checks()
    for run in checks:
        label = f"{args.client} sdk -> {args.upstream} upstream: {run.__name__}"
        try:
            run()
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            failures += 1
            detail = str(error) if isinstance(error, Failed) else traceback.format_exc()
            print(f"FAIL {label}: {detail}", flush=True)
        else:
            print(f"ok   {label}", flush=True)
    print(f"{args.client} sdk -> {args.upstream} upstream: {len(checks) - failures} of {len(checks)} checks ok")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
