//! The edge agent (built by issue 3).
