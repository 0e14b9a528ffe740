//! rsp-jepsen
