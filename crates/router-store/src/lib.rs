//! router-store
