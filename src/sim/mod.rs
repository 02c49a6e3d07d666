//! Simulated Genesys Cloud org.
