//! The bridge (built by issue 3).
