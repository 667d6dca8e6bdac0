//! router-sim
