//! Misbehaviour on demand, for testing a client's error handling: Kakao down, slow, answering an
//! odd status or a redirect; and a count of the calls each path received. Set through `Handle`.
//! `/emulator/` paths are counted but never fail: they are how a test drives the emulator.

use std::{collections::HashMap, sync::Arc, time::Duration};

use poem::{Endpoint, IntoResponse, Request, Response, http::StatusCode};

use crate::Shared;

/// What a faulty endpoint answers instead of doing its work.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// This HTTP status with a plain-text body (500 for an outage, 503, 429…).
    Status(u16),
    /// `307 Temporary Redirect` to this location (a path of the emulator, or any URL).
    Redirect(String),
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    calls: HashMap<String, usize>,
    everywhere: Option<Fault>,
    by_path: HashMap<String, Fault>,
    delay: Option<Duration>,
}

impl Faults {
    pub fn set_everywhere(&mut self, fault: Option<Fault>) {
        self.everywhere = fault;
    }

    pub fn set_on(&mut self, path: &str, fault: Fault) {
        self.by_path.insert(path.to_owned(), fault);
    }

    pub fn clear_paths(&mut self) {
        self.by_path.clear();
    }

    pub fn set_delay(&mut self, delay: Option<Duration>) {
        self.delay = delay;
    }

    pub fn calls(&self, path: &str) -> usize {
        self.calls.get(path).copied().unwrap_or(0)
    }

    /// Counts the call, then says how long to wait and what to answer instead, if anything.
    fn on_call(&mut self, path: &str) -> (Option<Duration>, Option<Fault>) {
        *self.calls.entry(path.to_owned()).or_default() += 1;
        if path.starts_with("/emulator/") {
            return (None, None);
        }
        let fault = self.by_path.get(path).or(self.everywhere.as_ref()).cloned();
        (self.delay, fault)
    }
}

impl Fault {
    fn into_response(self) -> Response {
        match self {
            Fault::Status(status) => Response::builder()
                .status(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
                .content_type("text/plain")
                .body("emulator: injected fault"),
            Fault::Redirect(location) => Response::builder()
                .status(StatusCode::TEMPORARY_REDIRECT)
                .header("location", location)
                .finish(),
        }
    }
}

/// An emulator's state that holds its faults: the middleware finds it in the request's data.
pub(crate) trait HasFaults: Send + Sync + 'static {
    fn faults(&self) -> &std::sync::Mutex<Faults>;
}

impl HasFaults for Shared {
    fn faults(&self) -> &std::sync::Mutex<Faults> {
        &self.faults
    }
}

/// Middleware: counts every request, then acts out the fault set for its path, if any.
pub(crate) async fn act_out<E: Endpoint, S: HasFaults>(next: E, req: Request) -> poem::Result<Response> {
    let planned = req
        .data::<Arc<S>>()
        .map(|shared| crate::lock(shared.faults()).on_call(req.uri().path()));
    let (delay, fault) = planned.unwrap_or_default();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    match fault {
        Some(fault) => Ok(fault.into_response()),
        None => next.call(req).await.map(IntoResponse::into_response),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_fault_wins_over_the_general_one_and_control_paths_never_fail() {
        let mut faults = Faults::default();
        faults.set_everywhere(Some(Fault::Status(500)));
        faults.set_on("/oauth/token", Fault::Redirect("/elsewhere".into()));
        assert_eq!(faults.on_call("/v2/user/me").1, Some(Fault::Status(500)));
        assert_eq!(
            faults.on_call("/oauth/token").1,
            Some(Fault::Redirect("/elsewhere".into()))
        );
        assert_eq!(faults.on_call("/emulator/tokens").1, None);
        assert_eq!((faults.calls("/v2/user/me"), faults.calls("/emulator/tokens")), (1, 1));
    }
}
