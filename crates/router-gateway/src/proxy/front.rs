//! The proxy API as the listener serves it: the two chat endpoints, which carry nearly every
//! request, go straight to their handlers, and everything else to the axum [`Router`]
//! ([`super::router`], which serves the chat endpoints the same way for embedders).
//!
//! Between hyper and a handler, axum's router looks the path up, wraps the request and the
//! handler's future in a few layers of services, and checks the response on the way out:
//! past it, a short `auto` request costs the serving thread about 2.9 k instructions (3 %)
//! fewer (BENCHMARKS.md, "The chat endpoints past axum's router"). For a `POST` to either
//! chat path none of that does anything the handler needs: the handlers take the whole
//! request and read the body themselves, the router's only other work on such a response
//! (a `Content-Length` from the body's exact size) is what hyper does too, and no layer sits
//! on the proxy's routes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{Method, Request};
use axum::response::Response;
use hyper::body::Incoming;
use tower::ServiceExt;

use super::{anthropic, openai, router};
use crate::app::Gateway;

/// The paths served without the router.
const CHAT_COMPLETIONS: &str = "/v1/chat/completions";
const MESSAGES: &str = "/v1/messages";

type Answer = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// The proxy API as one hyper service (see the module's comment).
#[derive(Clone)]
pub struct Front {
    gateway: Gateway,
    router: Router,
}

impl Front {
    pub fn new(gateway: Gateway) -> Front {
        Front { router: router(gateway.clone()), gateway }
    }
}

impl hyper::service::Service<Request<Incoming>> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        let request = request.map(Body::new);
        if request.method() == Method::POST {
            match request.uri().path() {
                CHAT_COMPLETIONS => {
                    let gateway = self.gateway.clone();
                    return Box::pin(async move {
                        Ok(openai::chat_completions(State(gateway), request).await)
                    });
                }
                MESSAGES => {
                    let gateway = self.gateway.clone();
                    return Box::pin(async move {
                        Ok(anthropic::messages(State(gateway), request).await)
                    });
                }
                _ => {}
            }
        }
        Box::pin(self.router.clone().oneshot(request))
    }
}
