//! rsp-actors
