//! Simulated sensors and load generators (issue 6 completes them).
