//! rsp-policies
