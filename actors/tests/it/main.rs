//! Integration tests of the tenant runtime on in-process clusters. One test
//! binary (modules below) so the workspace links it once.

mod expiry;
mod lockout;
mod overload;
mod policies;
mod quota;
mod sessions;
mod supervision;
mod support;
