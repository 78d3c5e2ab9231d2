//! Nothing here: the end-to-end tests are in tests/e2e.rs.
