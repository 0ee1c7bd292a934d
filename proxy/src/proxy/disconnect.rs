//! A client that goes away mid-response (a browser closing a long poll, an event stream or a
//! download when the user leaves the page) is normal traffic, not a proxy failure. Pingora logs
//! every final proxy error at ERROR unless `suppress_error_log` says otherwise; these are
//! logged at DEBUG instead, and everything else (upstream failures, internal errors) still
//! shows at ERROR.

use pingora::{Error, ErrorSource, ErrorType};

/// Whether `e` only says the client's connection closed or broke.
pub(super) fn client_went_away(e: &Error) -> bool {
    e.esource() == &ErrorSource::Downstream
        && matches!(
            e.etype(),
            ErrorType::ConnectionClosed | ErrorType::WriteError | ErrorType::ReadError
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_client_disconnects_are_quiet() {
        // (source, type, quiet)
        let cases = [
            (ErrorSource::Downstream, ErrorType::ConnectionClosed, true),
            (ErrorSource::Downstream, ErrorType::WriteError, true),
            (ErrorSource::Downstream, ErrorType::ReadError, true),
            // A client that sent garbage or timed out is worth seeing.
            (ErrorSource::Downstream, ErrorType::InvalidHTTPHeader, false),
            (ErrorSource::Downstream, ErrorType::ReadTimedout, false),
            // The upstream closing or failing is a real failure.
            (ErrorSource::Upstream, ErrorType::ConnectionClosed, false),
            (ErrorSource::Upstream, ErrorType::ReadError, false),
            (ErrorSource::Upstream, ErrorType::ConnectRefused, false),
            (ErrorSource::Internal, ErrorType::WriteError, false),
        ];
        for (source, etype, quiet) in cases {
            let e = Error::create(etype.clone(), source.clone(), None, None);
            assert_eq!(client_went_away(&e), quiet, "{source:?} {etype:?}");
        }
    }
}
