//! Authenticode (PE/COFF image hash), SHA-384.
