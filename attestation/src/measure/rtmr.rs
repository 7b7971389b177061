//! RTMR prediction.
