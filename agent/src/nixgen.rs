//! nixgen
